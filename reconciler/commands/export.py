"""``reconciler export``: manifests describing the live stores, to adopt stores made by hand."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.commands.support.exits import user_errors
from reconciler.commands.support.options import CONNECTION_PARAMS, connection_options, given_flags, next_step
from reconciler.errors import UserError


@click.command(short_help="Write manifests of the live stores (adopt).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Write one manifest per store into this directory (CloudHSM trust anchors in certs/), e.g. "
                   "adopted/: outside the directory of the manifests you plan, whose stores it would declare "
                   "twice. Default: print every manifest to stdout.")
@click.option("--store", "stores", multiple=True, metavar="NAME", help="Export only this store (repeatable).")
@click.option("--force", is_flag=True, help="Overwrite files that already exist in --out.")
@click.option("--from-terraform", "statefile", type=click.Path(dir_okay=False), metavar="STATEFILE",
              help="Read the stores, keys and aliases from a Terraform state (terraform state pull, or terraform "
                   "show -json) instead of KMS, and print the 'terraform state rm' lines that hand them over. "
                   "Connects to nothing.")
@click.option("--target", "targets", multiple=True, metavar="ACCOUNT/REGION",
              help="Export this account and region (repeatable): each store's manifest gets its spec.account and "
                   "spec.region, and --out writes them under ACCOUNT/REGION/.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="A reconciler.yaml saying how to reach the --target accounts (default: the credential chain).")
@connection_options(region_help="AWS region to export (else AWS_REGION, AWS_DEFAULT_REGION).")
@user_errors
def export(out_dir, stores, force, statefile, targets, config_path, profile, region, endpoint_url, sandbox,
           sandbox_dir) -> None:
    """Write manifests describing the live stores and their keys, to adopt existing stores.

    Planning the exported manifests against the same account gives no changes (except the repair
    of a store whose connection FAILED). Secrets, which KMS never returns, become {fromEnv: NAME}
    references; each file's header says what to set. Keys pending deletion are listed in comments,
    not declared (declaring one would make the plan rescue it).
    """
    from reconciler.adopt.export import build_export, check_export, render_stdout, write_export
    from reconciler.aws.targets import make_target
    from reconciler.plan.make import read_declared_and_live

    source, handover = None, []
    if targets and statefile:
        raise UserError("--target reads KMS; --from-terraform reads a Terraform state: give one of them")
    if targets:
        _export_fleet(make_target(profile, region, endpoint_url, sandbox, sandbox_dir), targets, config_path, out_dir,
                      stores, force)
        return
    if statefile:
        from reconciler.adopt.terraform import from_terraform, source_for
        from reconciler.aws.connection import env_region

        found = from_terraform(statefile, region=region or env_region(), stores=list(stores) or None)
        live, source, handover = found.live, source_for(found, statefile), found.state_rm_lines()
        for note in found.notes:
            click.echo(f"Note: {note}", err=True)
    else:
        from reconciler.aws.connection import env_region

        if not (region or env_region() or sandbox):  # no manifests here to give a spec.region
            raise UserError("no AWS region: pass --region (the region to export) or set AWS_REGION")
        target = make_target(profile, region, endpoint_url, sandbox, sandbox_dir)
        _, live = read_declared_and_live(target, [])
    result = build_export(live, stores=list(stores) or None, with_files=bool(out_dir), source=source)
    check_export(result, input_error=statefile and f"{statefile}: not a Terraform state the tool can read: its "
                                                  "values make a manifest that does not validate")
    if not result.manifests:
        click.echo(f"No custom key stores in {live.region}: nothing to export.", err=True)
        return
    if out_dir:
        _warn_if_inside_manifests(Path(out_dir))
        written = write_export(result, out_dir, force=force)
        for path in written:
            click.echo(str(path))
        click.echo(f"Exported {len(result.manifests)} store(s) from {live.region} into {out_dir}. "
                   f"Check it with: {next_step('plan', *given_flags(*CONNECTION_PARAMS), args=[out_dir])}", err=True)
    else:
        click.echo(render_stdout(result), nl=False)
    for note in result.notes:
        click.echo(f"Note: {note}", err=True)
    if result.env:
        click.echo("Before an apply that sends secrets, set: " + ", ".join(sorted(result.env)), err=True)
    if handover:
        # with --out, stdout holds only file names and these lines; without, it holds the manifests
        click.echo("Once a plan of these manifests shows no changes, hand the resources over to reconciler "
                   "(Terraform forgets them; nothing in AWS changes):", err=True)
        for line in handover:
            click.echo(line, err=not out_dir)


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


def _export_fleet(target, targets, config_path, out_dir, stores, force) -> None:
    """Each --target's stores, with their account and region, under ACCOUNT/REGION/ with --out."""
    from reconciler.adopt.export import Export, build_export, check_export, render_stdout, write_export
    from reconciler.aws.reach import Reach
    from reconciler.manifest.repo_config import RepoConfig, load_repo_config
    from reconciler.plan.fleet import FleetTarget, connect_target, parse_targets
    from reconciler.plan.make import read_live_state

    config = (load_repo_config([str(Path(config_path).parent)]) if config_path else None) or RepoConfig()
    exports = []
    with Reach(target) as reach:
        for account, region in parse_targets(targets):
            conn, actual = connect_target(reach, config, FleetTarget(account, region))
            live = read_live_state(conn)
            result = build_export(live, stores=list(stores) or None, with_files=bool(out_dir), account=actual,
                                  subdir=f"{actual}/{region}/" if out_dir else "")
            check_export(result)
            exports.append(result)
    env = sorted({name for result in exports for name in result.env})
    if out_dir:
        every = Export(files=[item for result in exports for item in result.files])  # all checked, then written
        for path in write_export(every, out_dir, force=force):
            click.echo(str(path))
        click.echo(f"Exported {sum(len(r.manifests) for r in exports)} store(s) into {out_dir}; add a reconciler.yaml "
                   "there saying how to reach each account, then plan it", err=True)
    else:
        click.echo("---\n".join(render_stdout(r) for r in exports if r.manifests), nl=False)
    if env:
        click.echo("Before an apply that sends secrets, set: " + ", ".join(env), err=True)
