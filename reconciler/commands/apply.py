"""``reconciler apply``: execute a saved plan exactly, or plan and apply after confirmation."""

from __future__ import annotations

import sys

import click

from reconciler.commands.support.exits import user_errors
from reconciler.commands.support.options import DURATION, confirm, connection_options, print_plan, target_option


@click.command(short_help="Execute a saved plan, or plan and apply.")
@click.argument("args", nargs=-1, required=True, metavar="[PLANFILE | PATH...]")
@click.option("--auto-approve", is_flag=True, help="Do not ask for confirmation (required without a TTY).")
@click.option("--allow-destroy", is_flag=True, help="Allow destructive steps: schedule_key_deletion, delete_store.")
@click.option("--allow-recent-use", is_flag=True,
              help="Schedule the deletion of keys CloudTrail shows in use recently (or during their quarantine); "
                   "a saved plan keeps the choice it was made with.")
@click.option("--timeout", type=DURATION, default="20m", show_default=True,
              help="Per-step timeout for waits (e.g. 90s, 20m).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--journal", "journal_path", default="plans/journal.jsonl", show_default=True, metavar="FILE",
              help="Append step events here.")
@click.option("--no-journal", is_flag=True, help="Keep no journal (the progress is still printed).")
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@click.option("--lock-table", envvar="RECONCILER_LOCK_TABLE", show_envvar=True, metavar="NAME",
              help="DynamoDB table (string partition key LockID) that locks out concurrent applies to the same "
                   "account and region, as Terraform's S3 backend does. --sandbox always locks with a local file.")
@click.option("--lock-timeout", type=DURATION, default="0s", show_default=True,
              help="How long to wait for a lock another apply holds (e.g. 30s, 5m) before giving up.")
@click.option("--skip-preflight", is_flag=True,
              help="Apply even when a preflight check of an XKS proxy failed (see 'reconciler preflight').")
@target_option
@connection_options
@user_errors
def apply(args, auto_approve, allow_destroy, allow_recent_use, timeout, fmt, journal_path, no_journal,
          allow_outside_root, lock_table, lock_timeout, skip_preflight, targets, profile, region, endpoint_url, sandbox,
          sandbox_dir):
    """Execute a plan: a saved PLANFILE exactly, or plan PATH... and apply after confirmation.

    Exit 0 converged, 2 applied but deferred steps remain (re-run after the date shown),
    1 a step failed, apply refused, or another apply holds the lock. A plan that refuses a change
    runs nothing but its rescues of keys pending deletion (cancel_key_deletion), then exits 1.

    A fleet (a reconciler.yaml beside the manifests, a fleet plan file, or --target) is applied
    target by target in parallel, each with its own lock: exit 1 when any target failed.
    """
    from reconciler.apply.run import ApplyRequest, run_apply
    from reconciler.aws.targets import make_target

    request = ApplyRequest(
        args=list(args), target=make_target(profile, region, endpoint_url, sandbox, sandbox_dir),
        auto_approve=auto_approve, allow_destroy=allow_destroy, timeout_seconds=timeout,
        fmt=fmt, journal_path=None if no_journal else journal_path, allow_outside_root=allow_outside_root,
        lock_table=lock_table or None, lock_timeout_seconds=lock_timeout, handle_signals=True,
        allow_recent_use=allow_recent_use,
        skip_preflight=skip_preflight,
    )
    from reconciler.apply.fleet import fleet_config_of

    config = fleet_config_of(list(args), targets)
    if config is not None:
        from reconciler.apply.fleet import run_fleet_apply

        sys.exit(run_fleet_apply(request, config, print_plan=print_plan, confirm=confirm, targets=targets))
    sys.exit(run_apply(request, print_plan=print_plan, confirm=confirm))
