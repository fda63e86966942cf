"""``reconciler iam-policy``: the least-privilege IAM policy each mode of the tool needs."""

from __future__ import annotations

import click

from reconciler.commands.support.exits import user_errors
from reconciler.errors import UserError


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

    from reconciler.aws.permissions import RENDERERS, Scope

    if account != "*" and not re.fullmatch(r"[0-9]{12}", account):
        raise UserError(f"--account must be a 12-digit account id, got {account!r}")
    if lock_table and mode != "apply":
        raise UserError("--lock-table is for --mode apply (plan takes no lock)")
    click.echo(RENDERERS[fmt](mode, Scope(partition=partition, region=region, account=account,
                                          lock_table=lock_table)), nl=False)
    if fmt == "json" and "*" in (region, account):
        click.echo("Note: pass --region and --account to scope the key and alias ARNs to one account and region.",
                   err=True)
