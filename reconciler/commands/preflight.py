"""``reconciler preflight``: check the XKS proxies of the manifests before KMS is asked to use them."""

from __future__ import annotations

import json
import sys

import click

from reconciler.commands.support.exits import EXIT_ERROR, EXIT_OK, user_errors
from reconciler.commands.support.options import connection_options


@click.command(short_help="Check the manifests' XKS proxies as KMS would.")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@connection_options
@user_errors
def preflight(paths, fmt, allow_outside_root, profile, region, endpoint_url, sandbox, sandbox_dir):
    """Check the XKS proxy of every external key store in PATHS as KMS would, before KMS is
    asked to use it: DNS, TLS, health with the manifest's credential, latency against 250 ms,
    the EKM fleet, and GetKeyMetadata of every declared xksKeyId. Each failure names the
    ConnectionErrorCode or exception KMS would give, and its fix. Nothing is changed.

    Exit 0 every check passed (warnings allowed), 1 a check failed or an error.
    """
    from reconciler.aws.targets import make_target
    from reconciler.plan.make import desired_for
    from reconciler.plan.render import preflight_line
    from reconciler.preflight import check_all

    target = make_target(profile, region, endpoint_url, sandbox, sandbox_dir)
    results = check_all(desired_for(list(paths), target, allow_outside_root), target)
    failed = [r for r in results if r.status == "fail"]
    if fmt == "json":
        click.echo(json.dumps({"checks": [r.to_dict() for r in results], "failed": len(failed)}, indent=2))
    else:
        from reconciler.display import printable

        if not results:
            click.echo("No external key store with a proxy to check.")
        for result in results:
            click.echo(printable(preflight_line(result)))
        if results:
            click.echo(f"Preflight: {len(failed)} failed, "
                       f"{sum(r.status == 'warn' for r in results)} warning(s), "
                       f"{sum(r.status == 'not_checked' for r in results)} not checked, "
                       f"{sum(r.status == 'ok' for r in results)} passed.")
    sys.exit(EXIT_ERROR if failed else EXIT_OK)
