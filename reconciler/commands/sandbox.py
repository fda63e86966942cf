"""``reconciler sandbox ...``: the local KMS emulator's commands (serve it, move its clock, inject
faults, seed what manifests need).

Every verb acts on the embedded sandbox's state directory (``--sandbox-dir``, the one ``--sandbox``
uses) or, with ``--endpoint-url``, on a running ``sandbox serve``. Registered by
:mod:`reconciler.cli` (imported when one of them runs), whose error handling it shares.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import click

from reconciler.commands.support.options import DURATION, given_flags, next_step, sandbox_dir_option
from reconciler.commands.support.exits import ReconcilerGroup, fail, user_errors
from reconciler.errors import UserError, why_not_written

SANDBOX_REGION = "us-east-1"


@click.group(cls=ReconcilerGroup, short_help="The local KMS emulator: init, serve, time, faults.")
def sandbox() -> None:
    """The local KMS custom key store emulator: seed what manifests need, serve it, move its
    clock, inject faults. Its state is in --sandbox-dir, the directory --sandbox uses."""


def _control(endpoint_url: str | None, sandbox_dir: str | None):
    from reconciler.sandbox.control import control_for

    return control_for(endpoint_url, sandbox_dir)


def sandbox_target(func: Callable) -> Callable:
    func = sandbox_dir_option("Embedded sandbox state directory.")(func)
    func = click.option("--endpoint-url", metavar="URL",
                        help="Act on a running 'sandbox serve' instead of the embedded sandbox.")(func)
    return func


@sandbox.command(short_help="Seed what manifests need; write env.sh.")
@click.argument("paths", nargs=-1)
@click.option("--env-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Where to write the variables  [default: env.sh in the sandbox directory]")
@sandbox_target
@user_errors
def init(paths: tuple[str, ...], env_file: str | None, endpoint_url: str | None, sandbox_dir: str | None) -> None:
    """Make the sandbox ready for manifests (PATHS, default: manifests): create the CloudHSM
    clusters and VPC endpoint services they name, and write an env file with sandbox-only values
    for their {fromEnv: NAME} secrets, to load with '.'. Running it again creates nothing twice (an
    existing VPC endpoint service is set up again as the manifests need it)."""
    from reconciler.manifest.secrets import SecretError
    from reconciler.sandbox import fixtures
    from reconciler.sandbox.embedded import sandbox_dir as resolve_dir, unusable_directory
    from reconciler.plan.make import load_manifests

    paths = paths or ("manifests",)
    if not all(Path(p).exists() for p in paths):
        missing = next(p for p in paths if not Path(p).exists())
        raise UserError(f"{missing}: no such file or directory; pass the manifests' paths, e.g. "
                        f"{next_step('sandbox', 'init', 'path/to/manifests')}")
    try:
        wanted = fixtures.needs(load_manifests(list(paths)))
    except SecretError as exc:
        raise UserError(str(exc)) from None
    control = _control(endpoint_url, sandbox_dir)
    for line in fixtures.seed(control, wanted):
        click.echo(line)
    from reconciler.manifest.repo_config import load_repo_config

    config = load_repo_config(list(paths))  # the roles reconciler.yaml assumes, with their external ids
    for access in (config.accounts.values() if config else ()):
        if access.role_arn:
            click.echo(control.seed_role(access.role_arn, access.external_id))
    target = Path(env_file) if env_file else resolve_dir(sandbox_dir) / fixtures.ENV_FILE
    try:
        fixtures.write_env_file(target, wanted.env)
    except OSError as exc:
        if not env_file:
            raise unusable_directory(target.parent, exc) from None
        raise UserError(f"cannot write {target} ({why_not_written(target, exc)}); pass another --env-file") from None
    names = ", ".join(sorted(wanted.env)) or "none needed"
    click.echo(f"Wrote {target}: sandbox-only values for the manifests' variables ({names}).")
    if endpoint_url:  # a served sandbox: plan against it, with the credentials its banner printed
        click.echo("Next (with the AWS_* variables 'sandbox serve' printed): . " + " ".join(
            [_shell_path(target), "&&", next_step("plan", "--endpoint-url", endpoint_url, args=paths)]))
        return
    flags = given_flags("sandbox_dir")
    click.echo("Next: . " + " ".join([_shell_path(target), "&&", next_step("plan", "--sandbox", *flags, args=paths)]))


def _shell_path(path: Path) -> str:
    import shlex

    text = str(path)
    return shlex.quote(text if path.is_absolute() or text.startswith(".") else f"./{text}")


@sandbox.command(short_help="Serve the sandbox as a local AWS endpoint.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=4566, show_default=True, type=click.IntRange(0, 65535))
@sandbox_dir_option("State directory to serve: the one --sandbox uses.")
def serve(host: str, port: int, sandbox_dir: str | None) -> None:
    """Serve the sandbox as a local AWS endpoint, for the AWS CLI, SDKs, and the commands'
    --endpoint-url. It serves the same account as --sandbox (the same --sandbox-dir), so the
    commands and the server can be used together."""
    from reconciler.sandbox.embedded import SandboxStateError, sandbox_dir as resolve_dir
    from reconciler.sandbox.server import SandboxServer

    directory = resolve_dir(sandbox_dir)
    try:
        server = SandboxServer(host, port, directory=str(directory))
    except OSError as exc:
        fail(_cannot_listen(host, port, exc))
    except SandboxStateError as exc:
        fail(str(exc))
    click.echo(f"KMS sandbox listening on {server.url}, serving the sandbox in {directory} (Ctrl-C stops it).")
    click.echo("For the AWS CLI and SDKs, paste into another shell:")
    click.echo(f"  export AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox "
               f"AWS_DEFAULT_REGION={SANDBOX_REGION} AWS_REGION={SANDBOX_REGION} AWS_ENDPOINT_URL_KMS={server.url}")
    click.echo("  aws kms describe-custom-key-stores")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    """Why a server cannot listen on HOST:PORT, and which flag fixes it."""
    import errno
    import socket

    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return (f"cannot listen on {host}:{port} ({reason}: not an address of this machine); choose another --host, "
                "e.g. 127.0.0.1")
    return f"cannot listen on {host}:{port} ({reason}); choose another --port"


@sandbox.command(short_help="Move the emulator clock forward.")
@click.argument("duration", type=DURATION)
@sandbox_target
@user_errors
def advance(duration: float, endpoint_url: str | None, sandbox_dir: str | None) -> None:
    """Move the emulator clock forward by DURATION (e.g. 90s, 15m, 8d)."""
    now = _control(endpoint_url, sandbox_dir).advance(duration)
    click.echo(f"Sandbox clock is now {now}.")


@sandbox.command(short_help="Empty the sandbox.")
@sandbox_target
@user_errors
def reset(endpoint_url: str | None, sandbox_dir: str | None) -> None:
    """Empty the sandbox: no stores, no keys, no fixtures, default settings."""
    _control(endpoint_url, sandbox_dir).reset()
    click.echo("Sandbox reset.")


@sandbox.command(short_help="Show the clock and fault settings.")
@sandbox_target
@user_errors
def status(endpoint_url: str | None, sandbox_dir: str | None) -> None:
    """Show the sandbox clock and its fault settings."""
    click.echo(json.dumps(_control(endpoint_url, sandbox_dir).status(), indent=2))


@sandbox.command(short_help="Inject faults into the emulator.")
@click.option("--store", help="Store name the --connection-error / --proxy-error applies to.")
@click.option("--connection-error", metavar="CODE", help="ConnectCustomKeyStore of --store ends FAILED with CODE (NONE clears).")
@click.option("--proxy-error", metavar="EXCEPTION", help="Create/Update of --store raises this XksProxy* exception (NONE clears).")
@click.option("--latency-ms", type=click.FloatRange(min=0), help="Real milliseconds added to every request.")
@click.option("--throttle-rate", type=click.FloatRange(0, 1), help="Fraction of requests answered with ThrottlingException.")
@click.option("--error-rate", type=click.FloatRange(0, 1), help="Fraction of requests answered with KMSInternalException.")
@click.option("--lost-response-rate", type=click.FloatRange(0, 1),
              help="Fraction of successful writes whose response is lost.")
@click.option("--quotas", type=click.Choice(["on", "off"]), help="Enforce the KMS per-operation request quotas.")
@click.option("--quota", "quota_overrides", multiple=True, metavar="OPERATION=RPS", help="Override one quota.")
@click.option("--connect-delay", type=DURATION, help="Emulator time from ConnectCustomKeyStore to CONNECTED (e.g. 5s).")
@click.option("--seed", type=int, help="Seed of the fault model's random choices.")
@click.option("--clear", is_flag=True, help="Remove every fault first.")
@sandbox_target
@user_errors
def fault(store, connection_error, proxy_error, latency_ms, throttle_rate, error_rate, lost_response_rate, quotas,
          quota_overrides, connect_delay, seed, clear, endpoint_url, sandbox_dir) -> None:
    """Inject faults into the emulator."""
    from reconciler.sandbox.control import FaultChange

    overrides = {}
    for item in quota_overrides:
        op, _, rps = item.partition("=")
        try:
            overrides[op] = float(rps)
        except ValueError:
            raise click.BadParameter(f"{item!r}: use OPERATION=RPS, e.g. CreateKey=5",
                                     param_hint="'--quota'") from None
    change = FaultChange(clear=clear, store=store, connection_error=connection_error, proxy_error=proxy_error,
                         latency_ms=latency_ms, throttle_rate=throttle_rate, error_rate=error_rate,
                         lost_response_rate=lost_response_rate,
                         quotas=None if quotas is None else quotas == "on", quota_overrides=overrides,
                         connect_delay_seconds=connect_delay, seed=seed)
    click.echo(json.dumps(_control(endpoint_url, sandbox_dir).set_faults(change), indent=2))


@sandbox.command("seed-cluster", short_help="Create a CloudHSM cluster in the sandbox.")
@click.option("--cluster-id", help="Cluster id (default: generated, like cluster-1a23b4cdefg).")
@click.option("--hsms", "hsm_count", default=2, show_default=True, type=click.IntRange(0, 28))
@click.option("--state", default="ACTIVE", show_default=True,
              type=click.Choice(["CREATE_IN_PROGRESS", "UNINITIALIZED", "INITIALIZE_IN_PROGRESS", "INITIALIZED",
                                 "ACTIVE", "UPDATE_IN_PROGRESS", "MODIFY_IN_PROGRESS", "ROLLBACK_IN_PROGRESS",
                                 "DELETE_IN_PROGRESS", "DELETED", "DEGRADED"]),
              help="The cluster's state; KMS needs ACTIVE.")
@click.option("--trust-anchor", type=click.Path(exists=True, dir_okay=False), help="PEM file of the cluster's trust anchor.")
@click.option("--region", default=SANDBOX_REGION, show_default=True)
@sandbox_target
@user_errors
def seed_cluster_cmd(cluster_id, hsm_count, state, trust_anchor, region, endpoint_url, sandbox_dir) -> None:
    """Create a CloudHSM cluster in the sandbox (for AWS_CLOUDHSM stores); a cluster with that id
    that exists already is left as it is."""
    from reconciler.aws.regions import check_region
    from reconciler.sandbox.control import ClusterSeed

    check_region(region, "--region")
    pem = Path(trust_anchor).read_text() if trust_anchor else None
    made = _control(endpoint_url, sandbox_dir).seed_cluster(
        ClusterSeed(cluster_id=cluster_id, hsm_count=hsm_count, state=state, trust_anchor_pem=pem, region=region))
    if not made.created:
        click.echo(f"Note: CloudHSM cluster {made.id} exists already; it was left as it is.", err=True)
    click.echo(made.id)


@sandbox.command("seed-role", short_help="Create a role the sandbox's STS lets you assume.")
@click.argument("role_arn", metavar="ROLE_ARN")
@click.option("--external-id", metavar="ID", help="The external id the role's trust policy requires.")
@sandbox_target
@user_errors
def seed_role_cmd(role_arn, external_id, endpoint_url, sandbox_dir) -> None:
    """Create a role (arn:aws:iam::ACCOUNT:role/NAME) that AssumeRole lets the sandbox's caller assume:
    its credentials act in ACCOUNT. Any other role is refused with AccessDenied, as STS refuses a
    role whose trust policy does not let the caller in."""
    click.echo(_control(endpoint_url, sandbox_dir).seed_role(role_arn, external_id))


@sandbox.command("seed-endpoint-service", short_help="Create a VPC endpoint service in the sandbox.")
@click.option("--service-name", help="VPC endpoint service name (default: generated).")
@click.option("--private-dns-name", help="The service's verified private DNS name (the store's endpoint host).")
@click.option("--region", default=SANDBOX_REGION, show_default=True)
@sandbox_target
@user_errors
def seed_endpoint_service_cmd(service_name, private_dns_name, region, endpoint_url, sandbox_dir) -> None:
    """Create a VPC endpoint service in the sandbox (for VPC_ENDPOINT_SERVICE stores); one of that
    name is set up again with these settings."""
    from reconciler.aws.regions import check_region
    from reconciler.sandbox.control import EndpointServiceSeed

    check_region(region, "--region")
    made = _control(endpoint_url, sandbox_dir).seed_endpoint_service(
        EndpointServiceSeed(service_name=service_name, private_dns_name=private_dns_name, region=region))
    click.echo(made.id)


@sandbox.group("xks-proxy", cls=ReconcilerGroup, short_help="A local XKS proxy for external key stores.")
def xks_proxy() -> None:
    """A local XKS proxy (the KMS External Key Store Proxy API v1), for the sandbox's external
    key stores: docs/xks-proxy.md."""


@xks_proxy.command("serve", short_help="Run a local XKS proxy in the foreground.")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="The proxy's configuration (YAML): uriPath, credentials, keys.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
@click.option("--no-tls", is_flag=True, help="Serve plain HTTP (KMS itself only talks HTTPS).")
@click.option("--hostname", metavar="NAME",
              help="Register NAME (a store's uriEndpoint host) -> this proxy in the sandbox while it runs.")
@sandbox_target
@user_errors
def xks_proxy_serve(config_path: str, host: str, port: int, no_tls: bool, hostname: str | None,
                    endpoint_url: str | None, sandbox_dir: str | None) -> None:
    """Run a local XKS proxy until stopped (Ctrl-C). Its certificate comes from the sandbox's CA
    (in --sandbox-dir); with --hostname, the sandbox's emulator (the embedded one, or the one at
    --endpoint-url) calls this proxy for stores whose uriEndpoint is https://NAME, until it stops."""
    import signal

    from reconciler.sandbox.control import XksProxyRegistration
    from reconciler.sandbox.embedded import sandbox_dir as resolve_dir, unusable_directory
    from reconciler.sandbox.xks_proxy import CertificateAuthority, ConfigError, load_config, serve as serve_proxy

    if not Path(config_path).is_file():
        raise UserError(f"{config_path}: no such file; write one as docs/xks-proxy.md shows, then pass "
                        f"--config FILE")
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise UserError(f"{config_path} is not a valid XKS proxy configuration:\n{exc}") from None
    control = _control(endpoint_url, sandbox_dir) if hostname else None  # a bad --endpoint-url before listening
    directory = resolve_dir(sandbox_dir)
    ca = None
    if not no_tls:
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            ca = CertificateAuthority.load_or_create(directory)
        except OSError as exc:
            raise unusable_directory(directory, exc) from None
    try:
        server = serve_proxy(config, host=host, port=port, tls=not no_tls, hostname=hostname, ca=ca, start=False)
    except OSError as exc:
        raise UserError(_cannot_listen(host, port, exc)) from None
    info = server.info()
    if control is not None:
        control.register_xks_proxy(XksProxyRegistration(hostname=hostname, host=info.host, port=info.port,
                                                        scheme=info.scheme, ca_pem=info.ca_pem))
    click.echo(f"XKS proxy listening on {info.base_url} (Ctrl-C stops it).")
    if hostname:
        click.echo(f"Registered {hostname} -> {info.url} in the sandbox: stores with uriEndpoint "
                   f"https://{hostname} and uriPath {info.uri_path} use this proxy.")
    if ca is not None:
        click.echo(f"Its certificate is issued by the sandbox CA: {directory / 'xks-proxy-ca.pem'}")
    sys.stdout.flush()

    def stop(signum, frame):  # SIGTERM ends it like Ctrl-C: unregister, then exit
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if control is not None and hostname:
            control.unregister_xks_proxy(hostname, info.port)
            click.echo(f"Unregistered {hostname}.")
