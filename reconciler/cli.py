"""The command line: parse flags, call the modules, choose exit codes.

Exit codes (documented in the README):
  validate  0 valid, 1 invalid
  plan      0 no changes, 2 changes present (deferred steps count), 1 error
  apply     0 converged, 2 applied but deferred steps remain, 1 a step failed or apply refused
  other     0 success, 1 error
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from reconciler import __version__
from reconciler.aws import Target
from reconciler.errors import UserError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def fail(message: str, code: int = EXIT_ERROR) -> None:
    from reconciler.display import printable

    click.echo(f"Error: {printable(message, keep_newlines=True)}", err=True)
    sys.exit(code)


def user_errors(func: Callable) -> Callable:
    """Turn the errors a user can cause into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
            PartialCredentialsError,
        )

        from reconciler.aws import ConnectionError_
        from reconciler.sandbox.control import ControlError
        from reconciler.sandbox.embedded import SandboxStateError

        try:
            return func(*args, **kwargs)
        except (UserError, ControlError, SandboxStateError, ConnectionError_) as exc:
            fail(str(exc), getattr(exc, "exit_code", EXIT_ERROR))
        except NoCredentialsError:
            fail("no AWS credentials found: set AWS_PROFILE (or --profile) or the AWS_ACCESS_KEY_ID "
                 "environment variables, or use --sandbox to run against the embedded emulator")
        except PartialCredentialsError as exc:
            fail(f"incomplete AWS credentials ({exc}); check your profile or environment")
        except NoRegionError:
            fail("no AWS region: pass --region, set AWS_REGION, or set spec.region in the manifests")
        except EndpointConnectionError as exc:
            fail(f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}; check --endpoint-url "
                 "and your network")
        except ClientError as exc:
            err = exc.response.get("Error", {})
            op = getattr(exc, "operation_name", "the request")
            hint = ""
            if err.get("Code") in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
                hint = "; check the credentials and that their IAM policy allows it (see 'reconciler iam-policy')"
            fail(f"AWS refused {op}: {err.get('Code')}: {err.get('Message', '')}{hint}")

    return wrapper


def connection_options(func: Callable) -> Callable:
    options = [
        click.option("--profile", envvar="AWS_PROFILE", help="AWS profile (default: the standard boto3 chain)."),
        click.option("--region", help="AWS region (else AWS_REGION, AWS_DEFAULT_REGION, or the manifests' spec.region)."),
        click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL_KMS",
                     help="KMS endpoint, e.g. a running 'reconciler sandbox serve'."),
        click.option("--sandbox", is_flag=True, help="Use the embedded KMS emulator instead of AWS (no credentials needed)."),
        click.option("--sandbox-dir", envvar="RECONCILER_SANDBOX_DIR", type=click.Path(file_okay=False),
                     help="State directory of the embedded sandbox (default .reconciler/sandbox)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_endpoint_url(endpoint_url: str | None) -> None:
    """An endpoint is an http(s) URL with a host: anything else fails deep inside botocore."""
    from urllib.parse import urlsplit

    if not endpoint_url:
        return
    try:
        parts = urlsplit(endpoint_url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        from reconciler.display import printable

        raise UserError(f"--endpoint-url {printable(endpoint_url)!r} is not an endpoint URL; use http(s)://HOST[:PORT], "
                        "e.g. https://kms.us-east-1.amazonaws.com or http://127.0.0.1:4566")


def make_target(profile: str | None, region: str | None, endpoint_url: str | None, sandbox: bool,
                sandbox_dir: str | None) -> Target:
    if not sandbox:
        check_endpoint_url(endpoint_url)
    return Target(profile=None if sandbox else profile, region=region,
                  endpoint_url=None if sandbox else endpoint_url, sandbox=sandbox, sandbox_dir=sandbox_dir)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Declarative reconciler for AWS KMS custom key stores (XKS and CloudHSM).

    Declare key stores in YAML manifests; `plan` shows what would change, `apply` makes it so.
    Add --sandbox to any command to run against the embedded emulator.
    """


# -- validate / schema ---------------------------------------------------------------------------

@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--check-secrets", is_flag=True,
              help="Also resolve every secret reference (environment variables, files), as apply will.")
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@user_errors
def validate(paths: tuple[str, ...], check_secrets: bool, allow_outside_root: bool) -> None:
    """Check manifests offline (no AWS calls). Exit 0 valid, 1 invalid."""
    from reconciler.workflow import validate_paths

    problems, count = validate_paths(list(paths), check_secrets=check_secrets,
                                     allow_outside_root=allow_outside_root)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in the manifests.", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"{count} manifest(s) valid.")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of the manifest (for editors' YAML language servers)."""
    from reconciler.manifest.schema import manifest_json_schema_text

    click.echo(manifest_json_schema_text(), nl=False)


# -- plan / show ---------------------------------------------------------------------------------

FORMATS = click.Choice(["text", "json", "markdown"])


def _color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def print_plan(plan, fmt: str) -> None:
    from reconciler.plan.render import RENDERERS

    if fmt == "text" and _color(sys.stdout):
        from rich.console import Console

        Console(highlight=False, soft_wrap=True).print(RENDERERS["text"](plan, color=True), end="")
    else:
        click.echo(RENDERERS[fmt](plan), nl=False)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan (JSON) for 'apply PLANFILE'.")
@click.option("--no-step-summary", is_flag=True, help="Do not append to $GITHUB_STEP_SUMMARY.")
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@connection_options
@user_errors
def plan(paths, fmt, out, no_step_summary, allow_outside_root, profile, region, endpoint_url, sandbox, sandbox_dir):
    """Show what apply would change. Exit 0 no changes, 2 changes, 1 error."""
    from reconciler.plan.render import render_markdown
    from reconciler.workflow import make_plan, save_plan

    target = make_target(profile, region, endpoint_url, sandbox, sandbox_dir)
    result = make_plan(list(paths), target, allow_outside_root=allow_outside_root)
    print_plan(result.plan, fmt)
    if out:
        save_plan(result.plan, out)
        click.echo(f"Saved the plan to {out}; apply it with: reconciler apply {out}", err=True)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file and not no_step_summary:
        append_step_summary(summary_file, render_markdown(result.plan))
    if result.plan.refusals:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGES if result.plan.has_changes else EXIT_OK)


def append_step_summary(path: str, text: str) -> None:
    """Append to $GITHUB_STEP_SUMMARY; a summary that cannot be written is a warning (the plan
    itself was printed, and its exit code stands)."""
    import stat

    try:
        if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            raise OSError(0, "not a regular file")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        click.echo(f"Warning: cannot append the plan to $GITHUB_STEP_SUMMARY ({path}: {exc.strerror or exc}); "
                   "the plan above is complete", err=True)


@cli.command()
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@user_errors
def show(planfile: str, fmt: str) -> None:
    """Render a saved plan file."""
    from reconciler.workflow import load_plan_file

    print_plan(load_plan_file(planfile), fmt)


# -- apply ---------------------------------------------------------------------------------------

@cli.command()
@click.argument("args", nargs=-1, required=True, metavar="[PLANFILE | PATH...]")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (required without a TTY).")
@click.option("--allow-destroy", is_flag=True, help="Allow destructive steps: schedule_key_deletion, delete_store.")
@click.option("--timeout", default="20m", show_default=True, help="Per-step timeout for waits (e.g. 90s, 20m).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--journal", "journal_path", default="plans/journal.jsonl", show_default=True,
              help="Append step events here.")
@click.option("--no-journal", is_flag=True, help="Keep no journal (the progress is still printed).")
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@click.option("--lock-table", envvar="RECONCILER_LOCK_TABLE", metavar="NAME",
              help="DynamoDB table (string partition key LockID) that locks out concurrent applies to the same "
                   "account and region, as Terraform's S3 backend does. --sandbox always locks with a local file.")
@click.option("--lock-timeout", default="0s", show_default=True,
              help="How long to wait for a lock another apply holds (e.g. 30s, 5m) before giving up.")
@connection_options
@user_errors
def apply(args, auto_approve, allow_destroy, timeout, fmt, journal_path, no_journal, allow_outside_root, lock_table,
          lock_timeout,
          profile, region, endpoint_url, sandbox, sandbox_dir):
    """Execute a plan: a saved PLANFILE exactly, or plan PATH... and apply after confirmation.

    Exit 0 converged, 2 applied but deferred steps remain (re-run after the date shown),
    1 a step failed, apply refused, or another apply holds the lock.
    """
    from reconciler.sandbox.clock import parse_duration
    from reconciler.workflow import ApplyRequest, run_apply

    try:
        timeout_seconds = parse_duration(timeout)
    except ValueError as exc:
        raise UserError(f"--timeout: {exc}") from None
    try:
        lock_timeout_seconds = 0.0 if lock_timeout.strip() in ("0", "") else parse_duration(lock_timeout)
    except ValueError as exc:
        raise UserError(f"--lock-timeout: {exc}") from None
    request = ApplyRequest(
        args=list(args), target=make_target(profile, region, endpoint_url, sandbox, sandbox_dir),
        auto_approve=auto_approve, allow_destroy=allow_destroy, timeout_seconds=timeout_seconds,
        fmt=fmt, journal_path=None if no_journal else journal_path, allow_outside_root=allow_outside_root,
        lock_table=lock_table or None, lock_timeout_seconds=lock_timeout_seconds, handle_signals=True,
    )
    sys.exit(run_apply(request, print_plan=print_plan, confirm=_confirm))


@cli.command("force-unlock")
@click.argument("run_id")
@click.option("--lock-table", envvar="RECONCILER_LOCK_TABLE", required=True, metavar="NAME",
              help="The DynamoDB lock table given to apply.")
@click.option("--region", help="The region the lock is for (else AWS_REGION / AWS_DEFAULT_REGION).")
@click.option("--profile", envvar="AWS_PROFILE", help="AWS profile (default: the standard boto3 chain).")
@user_errors
def force_unlock(run_id: str, lock_table: str, region: str | None, profile: str | None) -> None:
    """Remove the apply lock RUN_ID holds in the lock table (after that run was killed).

    Only the lock of that run is removed; check first that it is not running any more.
    """
    from reconciler.workflow import force_unlock as remove

    holder = remove(lock_table, run_id, region=region, profile=profile)
    click.echo(f"Removed the lock {holder.Path} held by {holder.describe()}.")


def _confirm(question: str) -> bool:
    return click.confirm(question, default=False)


# -- sandbox -------------------------------------------------------------------------------------

@cli.group()
def sandbox() -> None:
    """The local KMS custom key store emulator: serve it, move its clock, inject faults."""


def _control(endpoint_url: str | None, sandbox_dir: str | None):
    from reconciler.sandbox.control import control_for

    return control_for(endpoint_url, sandbox_dir)


def sandbox_target(func: Callable) -> Callable:
    func = click.option("--sandbox-dir", envvar="RECONCILER_SANDBOX_DIR", type=click.Path(file_okay=False),
                        help="Embedded sandbox state directory (default .reconciler/sandbox).")(func)
    func = click.option("--endpoint-url", help="Act on a running 'sandbox serve' instead of the embedded sandbox.")(func)
    return func


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=4566, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the emulator as a local AWS endpoint (use with --endpoint-url or AWS_ENDPOINT_URL_KMS)."""
    from reconciler.sandbox.server import SandboxServer

    try:
        server = SandboxServer(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port")
    click.echo(f"KMS sandbox listening on {server.url}  (Ctrl-C to stop)")
    click.echo(f"  export AWS_ENDPOINT_URL_KMS={server.url} AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


@sandbox.command()
@click.argument("duration")
@sandbox_target
@user_errors
def advance(duration: str, endpoint_url: str | None, sandbox_dir: str | None) -> None:
    """Move the emulator clock forward by DURATION (e.g. 90s, 15m, 8d)."""
    from reconciler.sandbox.clock import parse_duration

    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    now = _control(endpoint_url, sandbox_dir).advance(seconds)
    click.echo(f"Sandbox clock is now {now}.")


@sandbox.command()
@sandbox_target
@user_errors
def reset(endpoint_url: str | None, sandbox_dir: str | None) -> None:
    """Empty the sandbox: no stores, no keys, default settings."""
    _control(endpoint_url, sandbox_dir).reset()
    click.echo("Sandbox reset.")


@sandbox.command()
@sandbox_target
@user_errors
def status(endpoint_url: str | None, sandbox_dir: str | None) -> None:
    """Show the sandbox clock and its fault settings."""
    click.echo(json.dumps(_control(endpoint_url, sandbox_dir).status(), indent=2))


@sandbox.command()
@click.option("--store", help="Store name the --connection-error / --proxy-error applies to.")
@click.option("--connection-error", metavar="CODE", help="ConnectCustomKeyStore of --store ends FAILED with CODE (NONE clears).")
@click.option("--proxy-error", metavar="EXCEPTION", help="Create/Update of --store raises this XksProxy* exception (NONE clears).")
@click.option("--latency-ms", type=float, help="Real milliseconds added to every request.")
@click.option("--throttle-rate", type=float, help="Fraction of requests answered with ThrottlingException.")
@click.option("--error-rate", type=float, help="Fraction of requests answered with KMSInternalException.")
@click.option("--lost-response-rate", type=float, help="Fraction of successful writes whose response is lost.")
@click.option("--quotas", type=click.Choice(["on", "off"]), help="Enforce the KMS per-operation request quotas.")
@click.option("--quota", "quota_overrides", multiple=True, metavar="OPERATION=RPS", help="Override one quota.")
@click.option("--connect-delay", help="Emulator time from ConnectCustomKeyStore to CONNECTED (e.g. 5s).")
@click.option("--seed", type=int, help="Seed of the fault model's random choices.")
@click.option("--clear", is_flag=True, help="Remove every fault first.")
@sandbox_target
@user_errors
def fault(store, connection_error, proxy_error, latency_ms, throttle_rate, error_rate, lost_response_rate, quotas,
          quota_overrides, connect_delay, seed, clear, endpoint_url, sandbox_dir) -> None:
    """Inject faults into the emulator."""
    from reconciler.sandbox.clock import parse_duration
    from reconciler.sandbox.control import FaultChange

    overrides = {}
    for item in quota_overrides:
        op, _, rps = item.partition("=")
        try:
            overrides[op] = float(rps)
        except ValueError:
            raise UserError(f"--quota {item!r}: use OPERATION=RPS, e.g. CreateKey=5") from None
    try:
        delay = parse_duration(connect_delay) if connect_delay else None
    except ValueError as exc:
        raise UserError(f"--connect-delay: {exc}") from None
    change = FaultChange(clear=clear, store=store, connection_error=connection_error, proxy_error=proxy_error,
                         latency_ms=latency_ms, throttle_rate=throttle_rate, error_rate=error_rate,
                         lost_response_rate=lost_response_rate,
                         quotas=None if quotas is None else quotas == "on", quota_overrides=overrides,
                         connect_delay_seconds=delay, seed=seed)
    click.echo(json.dumps(_control(endpoint_url, sandbox_dir).set_faults(change), indent=2))


@sandbox.command("seed-cluster")
@click.option("--cluster-id", help="Cluster id (default: generated, like cluster-1a23b4cdefg).")
@click.option("--hsms", "hsm_count", default=2, show_default=True, type=int)
@click.option("--state", default="ACTIVE", show_default=True)
@click.option("--trust-anchor", type=click.Path(exists=True, dir_okay=False), help="PEM file of the cluster's trust anchor.")
@click.option("--region", default="us-east-1", show_default=True)
@sandbox_target
@user_errors
def seed_cluster_cmd(cluster_id, hsm_count, state, trust_anchor, region, endpoint_url, sandbox_dir) -> None:
    """Create a CloudHSM cluster in the sandbox (for AWS_CLOUDHSM stores)."""
    from reconciler.sandbox.control import ClusterSeed

    pem = Path(trust_anchor).read_text() if trust_anchor else None
    cid = _control(endpoint_url, sandbox_dir).seed_cluster(
        ClusterSeed(cluster_id=cluster_id, hsm_count=hsm_count, state=state, trust_anchor_pem=pem, region=region))
    click.echo(cid)


@sandbox.command("seed-endpoint-service")
@click.option("--service-name", help="VPC endpoint service name (default: generated).")
@click.option("--private-dns-name", help="The service's verified private DNS name (the store's endpoint host).")
@click.option("--region", default="us-east-1", show_default=True)
@sandbox_target
@user_errors
def seed_endpoint_service_cmd(service_name, private_dns_name, region, endpoint_url, sandbox_dir) -> None:
    """Create a VPC endpoint service in the sandbox (for VPC_ENDPOINT_SERVICE stores)."""
    from reconciler.sandbox.control import EndpointServiceSeed

    click.echo(_control(endpoint_url, sandbox_dir).seed_endpoint_service(
        EndpointServiceSeed(service_name=service_name, private_dns_name=private_dns_name, region=region)))


from reconciler.day2 import COMMANDS as _DAY2_COMMANDS  # noqa: E402
from reconciler.demo import demo  # noqa: E402

cli.add_command(demo)
for _command in _DAY2_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="reconciler")


if __name__ == "__main__":
    main()
