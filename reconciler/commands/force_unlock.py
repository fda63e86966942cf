"""``reconciler force-unlock``: remove the apply lock a killed run left in the lock table."""

from __future__ import annotations

import click

from reconciler.commands.support.exits import user_errors


@click.command("force-unlock", short_help="Remove the lock a killed apply left.")
@click.argument("run_id")
@click.option("--lock-table", envvar="RECONCILER_LOCK_TABLE", show_envvar=True, metavar="NAME",
              help="The DynamoDB lock table given to apply.  [needed: this or its variable]")
@click.option("--region", help="The region the lock is for (else AWS_REGION / AWS_DEFAULT_REGION).")
@click.option("--profile", envvar="AWS_PROFILE", show_envvar=True, help="AWS profile (default: the standard boto3 chain).")
@click.option("--endpoint-url", metavar="URL",
              help="The --endpoint-url the apply was given (its account id is read from STS there).")
@user_errors
def force_unlock(run_id: str, lock_table: str | None, region: str | None, profile: str | None,
                 endpoint_url: str | None) -> None:
    """Remove the apply lock RUN_ID holds in the DynamoDB lock table (after that run was killed).

    Only the lock of that run is removed; check first that it is not running any more. An apply
    with --sandbox locks with a file that is released when its process ends: nothing to unlock.
    """
    from reconciler.apply.run import force_unlock as remove

    if not lock_table:
        raise click.UsageError("the lock table is needed: pass --lock-table NAME or set RECONCILER_LOCK_TABLE")
    holder = remove(lock_table, run_id, region=region, profile=profile, endpoint_url=endpoint_url)
    click.echo(f"Removed the lock {holder.Path} held by {holder.describe()}.")
