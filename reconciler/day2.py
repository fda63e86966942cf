"""Commands for living with the tool: ``export`` (adopt existing stores), ``status`` (every
store at a glance) and ``iam-policy`` (the permissions each mode needs).

Registered by :mod:`reconciler.cli` (imported when one of them runs), whose connection flags and
error handling they share; import ``reconciler.cli``, not this module.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import click

from reconciler.cli import CONNECTION_PARAMS, connection_options, given_flags, make_target, next_step, user_errors
from reconciler.errors import UserError


def _read_live(target, paths: list[str]):
    """The region (from the flags, the environment, the manifests or the sandbox default), the
    declared stores (name -> spec.state, or None without manifests), and the live state."""
    from reconciler.aws import connect, env_region
    from reconciler.workflow import load_manifests, read_live_state, resolve_region

    declared = None
    loaded = SimpleNamespace(manifests=[])
    if paths:
        loaded = load_manifests(paths, default_region=target.region or env_region())
    region = resolve_region(target, loaded)
    if paths:
        declared = {}
        for entry in loaded.manifests:
            spec_region = entry.model.spec.region or entry.region
            if spec_region in (None, region):
                declared[entry.name] = getattr(entry.model.spec.state, "value", entry.model.spec.state)
    with connect(target, region) as conn:
        return declared, read_live_state(conn)


@click.command(short_help="Write manifests of the live stores (adopt).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write one manifest per store into this directory (CloudHSM trust anchors in certs/), e.g. "
                   "adopted/: outside the directory of the manifests you plan, whose stores it would declare "
                   "twice. Default: print every manifest to stdout.")
@click.option("--store", "stores", multiple=True, metavar="NAME", help="Export only this store (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist in --out.")
@connection_options
@user_errors
def export(out_dir, stores, force, profile, region, endpoint_url, sandbox, sandbox_dir) -> None:
    """Write manifests describing the live stores and their keys, to adopt existing stores.

    Planning the exported manifests against the same account gives no changes (except the repair
    of a store whose connection FAILED). Secrets, which KMS never returns, become {fromEnv: NAME}
    references; each file's header says what to set. Keys pending deletion are listed in comments,
    not declared (declaring one would make the plan rescue it).
    """
    from reconciler.export import build_export, check_export, render_stdout, write_export

    target = make_target(profile, region, endpoint_url, sandbox, sandbox_dir)
    _, live = _read_live(target, [])
    result = build_export(live, stores=list(stores) or None, with_files=bool(out_dir))
    check_export(result)
    if not result.manifests:
        click.echo(f"No custom key stores in {live.region}: nothing to export.", err=True)
        return
    if out_dir:
        _warn_if_inside_manifests(Path(out_dir))
        written = write_export(result, out_dir, force=force)
        for path in written:
            click.echo(str(path))
        click.echo(f"Exported {len(result.manifests)} store(s) from {live.region} into {out_dir}. "
                   f"Check it with: {next_step('plan', *given_flags(*CONNECTION_PARAMS), out_dir)}", err=True)
    else:
        click.echo(render_stdout(result), nl=False)
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    if result.env:
        click.echo("Before an apply that sends secrets, set: " + ", ".join(sorted(result.env)), err=True)


def _warn_if_inside_manifests(out_dir: Path) -> None:
    """Exporting into a directory of manifests makes planning that directory declare each
    exported store twice (once as written by hand, once as exported)."""
    here = Path.cwd().resolve()
    for parent in out_dir.resolve().parents:
        if parent == here or here not in parent.parents:
            break
        if any(parent.glob("*.yaml")) or any(parent.glob("*.yml")):
            click.echo(f"Note: {parent} holds manifests already: planning it would declare the exported stores "
                       "twice; export outside it (e.g. --out adopted/) if these stores are declared there", err=True)
            return


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
    from reconciler.status import RENDERERS, build_status

    target = make_target(profile, region, endpoint_url, sandbox, sandbox_dir)
    declared, live = _read_live(target, list(paths))
    click.echo(RENDERERS[fmt](build_status(live, declared)), nl=False)


@click.command("iam-policy", short_help="Print the IAM policy plan or apply needs.")
@click.option("--mode", type=click.Choice(["plan", "apply"]), default="apply", show_default=True,
              help="plan: read-only (also enough for status and export); apply: plan's reads plus the writes.")
@click.option("--region", default="*", show_default=True, help="Region in the key and alias ARNs.")
@click.option("--account", default="*", show_default=True, help="12-digit account id in the ARNs.")
@click.option("--partition", default="aws", show_default=True, help="ARN partition (aws, aws-cn, aws-us-gov).")
@click.option("--lock-table", metavar="NAME", help="Also allow the DynamoDB apply lock table NAME (apply mode).")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="json", show_default=True,
              help="json: the policy document; text: each permission with the reason the tool needs it.")
@user_errors
def iam_policy(mode, region, account, partition, lock_table, fmt) -> None:
    """Print the least-privilege IAM policy that 'reconciler plan' or 'reconciler apply' needs."""
    import re

    from reconciler.iam import RENDERERS, Scope

    if account != "*" and not re.fullmatch(r"[0-9]{12}", account):
        raise UserError(f"--account must be a 12-digit account id, got {account!r}")
    if lock_table and mode != "apply":
        raise UserError("--lock-table is for --mode apply (plan takes no lock)")
    click.echo(RENDERERS[fmt](mode, Scope(partition=partition, region=region, account=account,
                                          lock_table=lock_table)), nl=False)
    if fmt == "json" and "*" in (region, account):
        click.echo("Note: pass --region and --account to scope the key and alias ARNs to one account and region.",
                   err=True)


__all__ = ["export", "iam_policy", "status"]
