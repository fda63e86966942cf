"""``reconciler validate``: offline checks of manifests."""

from __future__ import annotations

import sys

import click

from reconciler.commands.support.exits import EXIT_ERROR, user_errors


@click.command(short_help="Check manifests offline.")
@click.argument("paths", nargs=-1, required=True)
@click.option("--check-secrets", is_flag=True,
              help="Also resolve every secret reference (environment variables, files), as apply will.")
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@user_errors
def validate(paths: tuple[str, ...], check_secrets: bool, allow_outside_root: bool) -> None:
    """Check manifests offline (no AWS calls). Exit 0 valid, 1 invalid."""
    from reconciler.manifest.loader import validate_paths  # validate never connects: only the manifest code

    problems, count = validate_paths(list(paths), with_secrets=check_secrets,
                                     allow_outside_root=allow_outside_root)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in the manifests.", err=True)
        sys.exit(EXIT_ERROR)
    click.echo(f"{count} manifest(s) valid.")
