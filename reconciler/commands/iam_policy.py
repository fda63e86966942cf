"""``reconciler iam-policy``: the least-privilege IAM policy each mode of the tool needs."""

from __future__ import annotations

import click

from reconciler.commands.support.exits import user_errors
from reconciler.errors import UserError

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
# who may assume a fleet's roles: a role or user (with its path), an account's root, or an account id
PRINCIPAL = (r"arn:(?P<partition>[a-z-]+):iam::[0-9]{12}:(root|(role|user)/([\w+=,.@-]+/)*[\w+=,.@-]+)"
             r"|[0-9]{12}")


def _principals(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    import re

    for value in values:
        match = re.fullmatch(PRINCIPAL, value)
        if not match or (match.group("partition") or "aws") not in PARTITIONS:
            raise click.BadParameter(
                f"{value!r} is not an IAM principal: give a role or user ARN (arn:aws:iam::111122223333:role/NAME, "
                "...:user/NAME), an account's root (arn:aws:iam::111122223333:root) or a 12-digit account id",
                ctx, param)
    return values


@click.command("iam-policy", short_help="Print the IAM policy plan or apply needs.")
@click.option("--mode", type=click.Choice(["plan", "apply"]), default="apply", show_default=True,
              help="plan: read-only (also enough for status and export); apply: plan's reads plus the writes.")
@click.option("--region", default="*", show_default=True, help="Region in the key and alias ARNs.")
@click.option("--account", default="*", show_default=True, help="12-digit account id in the ARNs.")
@click.option("--partition", type=click.Choice(PARTITIONS), default="aws", show_default=True, help="ARN partition.")
@click.option("--lock-table", metavar="NAME", help="Also allow the DynamoDB apply lock table NAME (apply mode).")
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="json", show_default=True,
              help="json: the policy document; text: each permission with the reason the tool needs it.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
              help="A fleet's reconciler.yaml: print, per account, the role's permissions and trust policy, and what "
                   "the runner needs to assume each role (JSON).")
@click.option("--trust-principal", "trust_principals", metavar="ARN", multiple=True, callback=_principals,
              help="With --config: who assumes the roles, trusted by each (repeatable: e.g. the plan and the apply "
                   "job's roles): a role or user ARN, an account's root ARN, or a 12-digit account id.")
@user_errors
def iam_policy(mode, region, account, partition, lock_table, fmt, config_path, trust_principals) -> None:
    """Print the least-privilege IAM policy that 'reconciler plan' or 'reconciler apply' needs."""
    import re

    from reconciler.aws.permissions import RENDERERS, Scope
    from reconciler.aws.regions import check_region

    if region != "*":
        check_region(region, "--region")
    if trust_principals and not config_path:
        raise click.UsageError("--trust-principal fills in the trust policies of the roles a fleet's reconciler.yaml "
                               "names: add --config FILE (the reconciler.yaml), or leave --trust-principal out")
    for principal in trust_principals:
        if principal.startswith("arn:") and principal.split(":")[1] != partition:
            raise UserError(f"--trust-principal {principal} is in partition {principal.split(':')[1]}, and the roles "
                            f"are in {partition} (--partition): IAM trusts no principal of another partition; pass "
                            f"--partition {principal.split(':')[1]} or a principal of {partition}")
    if config_path:
        _fleet_policies(mode, region, partition, lock_table, config_path, trust_principals)
        return
    if account != "*" and not re.fullmatch(r"[0-9]{12}", account):
        raise UserError(f"--account must be a 12-digit account id, got {account!r}")
    if lock_table and mode != "apply":
        raise UserError("--lock-table is for --mode apply (plan takes no lock)")
    click.echo(RENDERERS[fmt](mode, Scope(partition=partition, region=region, account=account,
                                          lock_table=lock_table)), nl=False)
    if fmt == "json" and "*" in (region, account):
        click.echo("Note: pass --region and --account to scope the key and alias ARNs to one account and region.",
                   err=True)


def _fleet_policies(mode, region, partition, lock_table, config_path, trust_principals) -> None:
    """Per account of a reconciler.yaml: the permissions its role needs, the trust policy that lets the
    runner assume it (with the external id), and the runner's own sts:AssumeRole statement."""
    import json
    from pathlib import Path

    from reconciler.aws.permissions import Scope, policy
    from reconciler.manifest.repo_config import load_repo_config

    config = load_repo_config([str(Path(config_path).parent)])
    if config is None or config.path is None or config.path.resolve() != Path(config_path).resolve():
        raise UserError(f"--config {config_path}: expected a file named reconciler.yaml")
    accounts = {}
    for account_id, access in sorted(config.accounts.items()):
        entry: dict = {"reachedWith": access.describe(),
                       "permissionsPolicy": policy(mode, Scope(partition=partition, region=region, account=account_id,
                                                               lock_table=lock_table))}
        if access.role_arn:
            trusted = list(trust_principals) if len(trust_principals) > 1 else (
                trust_principals[0] if trust_principals else "RUNNER_ROLE_ARN")
            statement: dict = {"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": "sts:AssumeRole"}
            if access.external_id:
                statement["Condition"] = {"StringEquals": {"sts:ExternalId": access.external_id}}
            entry["roleArn"] = access.role_arn
            entry["trustPolicy"] = {"Version": "2012-10-17", "Statement": [statement]}
        accounts[account_id] = entry
    roles = sorted(a.role_arn for a in config.accounts.values() if a.role_arn)
    runner = {"Version": "2012-10-17", "Statement": [
        {"Sid": "AssumeTheFleetRoles", "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": roles}]} \
        if roles else None
    click.echo(json.dumps({"accounts": accounts, "runnerPolicy": runner}, indent=2))
    if roles and not trust_principals:
        click.echo("Note: pass --trust-principal ARN (the runner's role; repeat it for each role that runs reconciler) "
                   "to fill in the trust policies' principal.", err=True)
