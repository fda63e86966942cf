"""``reconciler show``: render a saved plan file."""

from __future__ import annotations

import click

from reconciler.commands.support.exits import user_errors
from reconciler.commands.support.options import FORMATS, print_plan


@click.command(short_help="Render a saved plan file.")
@click.argument("planfile", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@user_errors
def show(planfile: str, fmt: str) -> None:
    """Render a saved plan file (offline)."""
    from reconciler.plan.files import load_plan_file

    print_plan(load_plan_file(planfile), fmt)
