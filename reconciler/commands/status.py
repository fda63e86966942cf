"""``reconciler status``: every live store at a glance (read-only)."""

from __future__ import annotations

import click

from reconciler.commands.support.exits import user_errors
from reconciler.commands.support.options import connection_options, target_option


@click.command(short_help="Every live store at a glance.")
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@target_option
@connection_options
@user_errors
def status(paths, fmt, targets, profile, region, endpoint_url, sandbox, sandbox_dir) -> None:
    """Every live custom key store at a glance; with manifests (PATH...), which ones they manage.

    Columns: name, id, type, connection state (with its error code), keys by key state, the
    earliest DeletionDate of a key pending deletion, and managed or not. Read-only. With a
    reconciler.yaml beside the manifests (or --target), every account and region, one table each.
    """
    from reconciler.aws.targets import make_target, sandbox_location
    from reconciler.live.status import RENDERERS, build_status
    from reconciler.plan.make import read_declared_and_live

    from reconciler.plan.fleet import fleet_config

    target = make_target(profile, region, endpoint_url, sandbox, sandbox_dir)
    where = {"endpoint": endpoint_url, "sandbox": sandbox_location(sandbox_dir) if sandbox else None}
    config = fleet_config(list(paths), targets)
    if config is not None:
        _fleet_status(list(paths), target, config, targets, fmt, where)
        return
    declared, live = read_declared_and_live(target, list(paths))
    click.echo(RENDERERS[fmt](build_status(live, declared, where)), nl=False)


def _fleet_status(paths, target, config, targets, fmt, where) -> None:
    """One table per account and region; a target that cannot be read says why (exit 1)."""
    import json
    import sys

    from reconciler.aws.reach import Reach
    from reconciler.display import printable
    from reconciler.live.status import RENDERERS, fleet_status
    from reconciler.plan.fleet import parse_targets, read_fleet

    with Reach(target) as reach:
        report = fleet_status(read_fleet(paths, target, config, only=parse_targets(targets), reach=reach), where)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for ident, status in report.targets:
            click.echo(printable(f"=== Target {ident} ==="))
            click.echo(printable(f"  cannot be read: {status}") + "\n" if isinstance(status, str)
                       else RENDERERS["text"](status))
    if report.failed:
        click.echo(f"Error: {len(report.failed)} target(s) could not be read: {', '.join(report.failed)}", err=True)
        sys.exit(1)
