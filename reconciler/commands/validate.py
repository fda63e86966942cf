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
    """Check manifests offline (no AWS calls), and the repository configuration (reconciler.yaml)
    beside them or given as a file. Exit 0 valid, 1 invalid."""
    from reconciler.manifest.loader import validate_paths  # validate never connects: only the manifest code
    from reconciler.manifest.repo_config import repo_config_problems, split_repo_configs

    configs, manifest_paths = split_repo_configs(paths)
    has_manifests = bool(manifest_paths or not configs)  # only reconciler.yaml given: no manifest to check
    problems, count = validate_paths(manifest_paths, with_secrets=check_secrets,
                                     allow_outside_root=allow_outside_root) if has_manifests else ([], 0)
    for problem in problems:
        click.echo(str(problem), err=True)
    config_errors = [error for path in configs for error in repo_config_problems(path)]
    for error in config_errors:
        click.echo(error, err=True)
    if problems or config_errors:
        where = "the manifests" if not config_errors else \
            "the repository configuration" if not problems else "the manifests and the repository configuration"
        click.echo(f"{len(problems) + len(config_errors)} problem(s) in {where}.", err=True)
        sys.exit(EXIT_ERROR)
    said = [f"{count} manifest(s) valid."] if has_manifests else []
    said += [f"{path}: valid (the repository configuration)." for path in configs]
    click.echo(" ".join(said))
