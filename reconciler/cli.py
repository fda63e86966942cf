"""The command line: parse flags, call the modules, choose exit codes.

Exit codes (documented in the README):
  validate  0 valid, 1 invalid
  plan      0 no changes, 2 changes present (deferred steps count), 1 error
  apply     0 converged, 2 applied but deferred steps remain, 1 a step failed or apply refused
  other     0 success, 1 error
"""

from __future__ import annotations

import functools
import os
import shlex
import sys
from typing import Any, Callable

import click
from click.core import ParameterSource

from reconciler import __version__
from reconciler.aws import Target
from reconciler.errors import UserError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def fail(message: str, code: int = EXIT_ERROR) -> None:
    from reconciler.display import printable

    click.echo(f"Error: {printable(message, keep_newlines=True)}", err=True)
    sys.exit(code)


class ReconcilerGroup(click.Group):
    """click exits 2 on a usage error (unknown flag or command, bad value, missing argument);
    here 2 means "changes present" (plan) or "deferred steps remain" (apply), and a pipeline must
    never mistake a typo for it. Every usage error, in any command or subcommand, exits 1 with one
    line: a group's own arguments are parsed in its ``make_context``, its subcommand's inside its
    ``invoke`` (after ``resolve_command`` has named the subcommand, for the message)."""

    _resolved: tuple[str, click.Command] | None = None
    # name -> "module:attribute" of commands defined in other modules, imported when used (a
    # command pays only for its own imports)
    lazy: dict[str, str] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            import importlib

            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.UsageError as exc:
            path = f"{parent.command_path} {info_name}" if parent else (info_name or self.name or "reconciler")
            raise click.exceptions.Exit(usage_error(exc, path, self)) from None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[Any, Any, list[str]]:
        self._resolved = None
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            self._resolved = (f"{ctx.command_path} {name}", command)
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.UsageError as exc:
            path, command = self._resolved or (ctx.command_path, self)
            raise click.exceptions.Exit(usage_error(exc, path, command)) from None


def usage_error(exc: click.exceptions.UsageError, path: str, command: click.Command) -> int:
    """Print a usage error as one line that says where the usage is; return the exit code, 1."""
    if exc.ctx is not None:
        path, command = exc.ctx.command_path, exc.ctx.command
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # a group without its command
        click.echo(exc.ctx.get_help(), err=True)
        click.echo(f"Error: '{path}' needs a command, one of those listed above", err=True)
        return EXIT_ERROR
    message = exc.format_message().rstrip(".")
    option = getattr(exc, "option_name", None)
    if option in ("--sandbox", "--sandbox-dir") and "sandbox" not in {p.name for p in command.params}:
        message += f"; '{path}' never connects to AWS or to the sandbox: leave {option} out"
    click.echo(f"Error: {message} (see '{path} --help')", err=True)
    return EXIT_ERROR


class Duration(click.ParamType):
    """90s, 15m, 2h, 8d, 1w or sums such as 1d12h, as seconds; 0 is allowed."""

    name = "duration"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        from reconciler.sandbox.clock import parse_duration

        if str(value).strip() == "0":
            return 0.0
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = Duration()


def given_flags(*names: str) -> list[str]:
    """The options among ``names`` that were typed on this command line (not defaults, not the
    environment, which the shell still has), as words to repeat in a printed next step."""
    ctx = click.get_current_context()
    words: list[str] = []
    for param in ctx.command.params:
        if param.name not in names or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
            continue
        value = ctx.params.get(param.name)
        option = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            words += [option] if value else []
        elif value is not None:
            words += [option, str(value)]
    return words


CONNECTION_PARAMS = ("profile", "region", "endpoint_url", "sandbox", "sandbox_dir")


def next_step(*words: str) -> str:
    """A command to print as the next step, quoted to work when pasted."""
    return shlex.join(["reconciler", *words])


def user_errors(func: Callable) -> Callable:
    """Turn the errors a user can cause into one line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as exc:  # includes the sandbox's ControlError and SandboxStateError
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            if not type(exc).__module__.startswith("botocore"):
                raise
            fail(_aws_error(exc))

    return wrapper


def _aws_error(exc: Exception) -> str:
    """One line for an error botocore raised (imported only when there is one)."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    if isinstance(exc, NoCredentialsError):
        ctx = click.get_current_context(silent=True)
        sandbox = ctx is not None and "sandbox" in {p.name for p in ctx.command.params}
        return ("no AWS credentials found: set AWS_PROFILE (or --profile) or the AWS_ACCESS_KEY_ID environment "
                "variables" + (", or use --sandbox to run against the embedded emulator" if sandbox else ""))
    if isinstance(exc, PartialCredentialsError):
        return f"incomplete AWS credentials ({exc}); check your profile or environment"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, set AWS_REGION, or set spec.region in the manifests"
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}; check --endpoint-url and your network"
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = getattr(exc, "operation_name", "the request")
        hint = ""
        if err.get("Code") in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
            hint = "; check the credentials and that their IAM policy allows it (see 'reconciler iam-policy')"
        return f"AWS refused {op}: {err.get('Code')}: {err.get('Message', '')}{hint}"
    return f"{type(exc).__name__}: {exc}"


def connection_options(func: Callable) -> Callable:
    options = [
        click.option("--profile", envvar="AWS_PROFILE", show_envvar=True,
                     help="AWS profile (default: the standard boto3 chain)."),
        click.option("--region", help="AWS region (else AWS_REGION, AWS_DEFAULT_REGION, or the manifests' spec.region)."),
        click.option("--endpoint-url", envvar="AWS_ENDPOINT_URL_KMS", show_envvar=True,
                     help="KMS endpoint, e.g. a running 'reconciler sandbox serve'."),
        click.option("--sandbox", is_flag=True, help="Use the embedded KMS emulator instead of AWS (no credentials needed)."),
        sandbox_dir_option("State directory of the embedded sandbox."),
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


def sandbox_dir_option(help_text: str) -> Callable:
    return click.option("--sandbox-dir", envvar="RECONCILER_SANDBOX_DIR", show_envvar=True,
                        type=click.Path(file_okay=False), metavar="DIR",
                        help=f"{help_text} [default: .reconciler/sandbox]")


def make_target(profile: str | None, region: str | None, endpoint_url: str | None, sandbox: bool,
                sandbox_dir: str | None) -> Target:
    if not sandbox:
        check_endpoint_url(endpoint_url)
    return Target(profile=None if sandbox else profile, region=region,
                  endpoint_url=None if sandbox else endpoint_url, sandbox=sandbox, sandbox_dir=sandbox_dir)


@click.group(cls=ReconcilerGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="reconciler")
def cli() -> None:
    """Declarative reconciler for AWS KMS custom key stores (XKS and CloudHSM).

    Declare key stores in YAML manifests; `plan` shows what would change, `apply` makes it so.
    plan, apply, status and export take --sandbox to run against the embedded emulator instead of
    AWS; validate, show, schema and iam-policy never connect to either. Exit codes: 0 success
    (no changes), 2 changes present (plan) or deferred steps remain (apply), 1 anything else,
    usage errors included.
    """


# -- validate / schema ---------------------------------------------------------------------------

@cli.command(short_help="Check manifests offline.")
@click.argument("paths", nargs=-1, required=True)
@click.option("--check-secrets", is_flag=True,
              help="Also resolve every secret reference (environment variables, files), as apply will.")
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@user_errors
def validate(paths: tuple[str, ...], check_secrets: bool, allow_outside_root: bool) -> None:
    """Check manifests offline (no AWS calls). Exit 0 valid, 1 invalid."""
    from reconciler.manifest.loader import validate_paths  # not the workflow: validate never connects

    problems, count = validate_paths(list(paths), with_secrets=check_secrets,
                                     allow_outside_root=allow_outside_root)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in the manifests.", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"{count} manifest(s) valid.")


@cli.command(short_help="Print the manifests' JSON Schema.")
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


@cli.command(short_help="Show what apply would change.")
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
        click.echo(f"Saved the plan to {out}" + _apply_hint(result.plan, out), err=True)
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


def _apply_hint(plan, out: str) -> str:
    """How to apply a saved plan, with the flags this plan was made with."""
    if plan.refusals:
        return "; the plan refuses some changes: fix the manifests and plan again"
    if not plan.has_changes:
        return " (no changes to apply)"
    flags = given_flags(*CONNECTION_PARAMS, "allow_outside_root")
    if any(step.destructive for step in plan.steps):
        return ("; it deletes keys or stores: review it, then apply it with: "
                + next_step("apply", *flags, "--allow-destroy", out))
    return "; apply it with: " + next_step("apply", *flags, out)


@cli.command(short_help="Render a saved plan file.")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@user_errors
def show(planfile: str, fmt: str) -> None:
    """Render a saved plan file (offline)."""
    from reconciler.workflow import load_plan_file

    print_plan(load_plan_file(planfile), fmt)


# -- apply ---------------------------------------------------------------------------------------

@cli.command(short_help="Execute a saved plan, or plan and apply.")
@click.argument("args", nargs=-1, required=True, metavar="[PLANFILE | PATH...]")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (required without a TTY).")
@click.option("--allow-destroy", is_flag=True, help="Allow destructive steps: schedule_key_deletion, delete_store.")
@click.option("--timeout", type=DURATION, default="20m", show_default=True,
              help="Per-step timeout for waits (e.g. 90s, 20m).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--journal", "journal_path", default="plans/journal.jsonl", show_default=True, metavar="FILE",
              help="Append step events here.")
@click.option("--no-journal", is_flag=True, help="Keep no journal (the progress is still printed).")
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@click.option("--lock-table", envvar="RECONCILER_LOCK_TABLE", show_envvar=True, metavar="NAME",
              help="DynamoDB table (string partition key LockID) that locks out concurrent applies to the same "
                   "account and region, as Terraform's S3 backend does. --sandbox always locks with a local file.")
@click.option("--lock-timeout", type=DURATION, default="0s", show_default=True,
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
    from reconciler.workflow import ApplyRequest, run_apply

    request = ApplyRequest(
        args=list(args), target=make_target(profile, region, endpoint_url, sandbox, sandbox_dir),
        auto_approve=auto_approve, allow_destroy=allow_destroy, timeout_seconds=timeout,
        fmt=fmt, journal_path=None if no_journal else journal_path, allow_outside_root=allow_outside_root,
        lock_table=lock_table or None, lock_timeout_seconds=lock_timeout, handle_signals=True,
    )
    sys.exit(run_apply(request, print_plan=print_plan, confirm=_confirm))


@cli.command("force-unlock", short_help="Remove the lock a killed apply left.")
@click.argument("run_id")
@click.option("--lock-table", envvar="RECONCILER_LOCK_TABLE", show_envvar=True, metavar="NAME",
              help="The DynamoDB lock table given to apply.  [needed: this or its variable]")
@click.option("--region", help="The region the lock is for (else AWS_REGION / AWS_DEFAULT_REGION).")
@click.option("--profile", envvar="AWS_PROFILE", show_envvar=True, help="AWS profile (default: the standard boto3 chain).")
@user_errors
def force_unlock(run_id: str, lock_table: str | None, region: str | None, profile: str | None) -> None:
    """Remove the apply lock RUN_ID holds in the DynamoDB lock table (after that run was killed).

    Only the lock of that run is removed; check first that it is not running any more. An apply
    with --sandbox locks with a file that is released when its process ends: nothing to unlock.
    """
    from reconciler.workflow import force_unlock as remove

    if not lock_table:
        raise click.UsageError("the lock table is needed: pass --lock-table NAME or set RECONCILER_LOCK_TABLE")
    holder = remove(lock_table, run_id, region=region, profile=profile)
    click.echo(f"Removed the lock {holder.Path} held by {holder.describe()}.")


def _confirm(question: str) -> bool:
    return click.confirm(question, default=False)


cli.lazy = {  # type: ignore[attr-defined]
    "demo": "reconciler.demo:demo",
    "sandbox": "reconciler.sandbox_commands:sandbox",
    "export": "reconciler.day2:export",
    "status": "reconciler.day2:status",
    "iam-policy": "reconciler.day2:iam_policy",
}


def main() -> None:
    from reconciler.sandbox import accel

    code = accel.run(sys.argv[1:])  # a sandbox command, run by the process that has the emulator loaded
    if code is not None:
        sys.exit(code)
    try:
        cli(prog_name="reconciler")
    finally:
        accel.start_server(sys.argv[1:])  # for the next sandbox command


if __name__ == "__main__":
    main()
