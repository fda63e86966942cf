"""``reconciler plan``: read the live state, print the ordered plan, optionally save it."""

from __future__ import annotations

import os
import sys

import click

from reconciler.commands.support.exits import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, user_errors
from reconciler.commands.support.options import (
    CONNECTION_PARAMS,
    FORMATS,
    connection_options,
    given_flags,
    next_step,
    print_plan,
    target_option,
)


@click.command(short_help="Show what apply would change.")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Save the plan (JSON) for 'apply PLANFILE'.")
@click.option("--no-step-summary", is_flag=True, help="Do not append to $GITHUB_STEP_SUMMARY.")
@click.option("--allow-outside-root", is_flag=True, help="Allow {fromFile} references outside the manifests' directory.")
@click.option("--allow-recent-use", is_flag=True,
              help="Schedule the deletion of keys CloudTrail shows in use recently (or during their quarantine) "
                   "instead of refusing; the saved plan records it.")
@target_option
@connection_options
@user_errors
def plan(paths, fmt, out, no_step_summary, allow_outside_root, allow_recent_use, targets, profile, region, endpoint_url,
         sandbox, sandbox_dir):
    """Show what apply would change, with a preflight of the XKS proxies its steps make KMS call.
    Exit 0 no changes, 2 changes, 1 error (a refused change, a failed preflight check).

    With a reconciler.yaml beside the manifests (or --target), every account and region they name
    is planned, concurrently, into one plan with a section per target.
    """
    from reconciler.aws.targets import make_target
    from reconciler.plan.files import save_plan
    from reconciler.plan.fleet_render import RENDERERS

    target = make_target(profile, region, endpoint_url, sandbox, sandbox_dir)
    result = _make(list(paths), target, targets, allow_outside_root, allow_recent_use)
    print_plan(result.plan, fmt)
    if out:
        save_plan(result.plan, out)
        click.echo(f"Saved the plan to {out}" + _apply_hint(result.plan, out), err=True)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file and not no_step_summary:
        append_step_summary(summary_file, RENDERERS["markdown"](result.plan))
    if result.plan.refusals or getattr(result.plan, "failed", ()) or getattr(result.plan, "preflight_failures", ()):
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_CHANGES if result.plan.has_changes else EXIT_OK)


def _make(paths: list[str], target, targets: tuple[str, ...], allow_outside_root: bool, allow_recent_use: bool):
    """The plan of one target (as always) or, with a reconciler.yaml or --target, of the fleet, with
    the preflight of the XKS proxies each target's steps make KMS call."""
    from reconciler.plan.fleet import plan_paths
    from reconciler.preflight import annotate

    return plan_paths(paths, target, targets, allow_outside_root=allow_outside_root,
                      allow_recent_use=allow_recent_use,
                      annotate=lambda plan, desired, conn: annotate(plan, desired, conn=conn))


def append_step_summary(path: str, text: str) -> None:
    """Append to $GITHUB_STEP_SUMMARY; a summary that cannot be written is a warning (the plan
    itself was printed, and its exit code stands)."""
    import stat

    try:
        if os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            raise OSError(0, "not a regular file")
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        click.echo(f"Warning: cannot append the plan to $GITHUB_STEP_SUMMARY ({path}: {exc.strerror or exc}); "
                   "the plan above is complete", err=True)


def _apply_hint(plan, out: str) -> str:
    """How to apply a saved plan, with the flags this plan was made with."""
    if plan.refusals:
        return "; the plan refuses some changes: fix the manifests and plan again"
    if getattr(plan, "failed", ()):
        return "; some targets could not be read (see above): fix their access and plan again"
    if getattr(plan, "preflight_failures", ()):
        return "; a preflight check failed: fix the proxy or the manifests and plan again"
    if not plan.has_changes:
        return " (no changes to apply)"
    flags = given_flags(*CONNECTION_PARAMS, "allow_outside_root")
    if any(step.destructive for step in plan.steps):
        return ("; it deletes keys or stores: review it, then apply it with: "
                + next_step("apply", *flags, "--allow-destroy", args=[out]))
    return "; apply it with: " + next_step("apply", *flags, args=[out])
