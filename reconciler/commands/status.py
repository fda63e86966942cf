"""``reconciler status``: every live store at a glance (read-only)."""

from __future__ import annotations

import click

from reconciler.commands.support.exits import user_errors
from reconciler.commands.support.options import connection_options


@click.command(short_help="Every live store at a glance.")
@click.argument("paths", nargs=-1)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@connection_options
@user_errors
def status(paths, fmt, profile, region, endpoint_url, sandbox, sandbox_dir) -> None:
    """Every live custom key store at a glance; with manifests (PATH...), which ones they manage.

    Columns: name, id, type, connection state (with its error code), keys by key state, the
    earliest DeletionDate of a key pending deletion, and managed or not. Read-only.
    """
    from reconciler.aws.targets import make_target, sandbox_location
    from reconciler.live.status import RENDERERS, build_status
    from reconciler.plan.make import read_declared_and_live

    target = make_target(profile, region, endpoint_url, sandbox, sandbox_dir)
    declared, live = read_declared_and_live(target, list(paths))
    where = {"endpoint": endpoint_url, "sandbox": sandbox_location(sandbox_dir) if sandbox else None}
    click.echo(RENDERERS[fmt](build_status(live, declared, where)), nl=False)
