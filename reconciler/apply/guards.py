"""The checks that refuse an apply before anything changes.

Each raises :class:`~reconciler.errors.RefusedError` (or :class:`StalePlanError`) with the reason
and the fix, and says that nothing was changed: a saved plan made for another target, or whose
manifests, live state or steps differ from what it was made from; a plan that touches a store no
manifest names or destroys where nothing asked for it; destruction without ``--allow-destroy``;
credentials for another account than ``spec.account``; a secret the steps will send that cannot be
resolved.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from reconciler.aws.connection import Connection
from reconciler.display import printable
from reconciler.errors import RefusedError, StalePlanError
from reconciler.plan.build import Desired
from reconciler.plan.model import SENSITIVE, Plan
from reconciler.plan.planner import diff

# -- a saved plan: the same target, manifests, live state and steps ------------------------------


def _describe_target(target: dict[str, Any]) -> str:
    if target.get("sandbox"):
        return f"the embedded sandbox in {target['sandbox']}"
    where = f"account {target.get('account')}, region {target.get('region')}"
    return where + (f", endpoint {target['endpoint']}" if target.get("endpoint") else ", the default AWS endpoint")


def check_target(plan: Plan, plan_path: str, here: dict[str, Any]) -> None:
    """A saved plan is applied only where it was made: the same account, region and endpoint, or
    the same embedded sandbox. (Two empty accounts have the same empty live state: the live-state
    check alone cannot tell them apart.)"""
    fields = ("account", "region", "endpoint", "sandbox")
    if any(plan.target.get(f) != here.get(f) for f in fields):
        raise RefusedError(f"{plan_path} was made for {_describe_target(plan.target)}, but this apply reaches "
                           f"{_describe_target(here)}; nothing was changed. Apply it with the connection flags it "
                           "was made with, or make a new plan for this target")


def check_manifests_unchanged(plan: Plan, plan_path: str, desired: Desired) -> None:
    if desired.digest != plan.manifests_digest:
        raise StalePlanError(f"the manifests ({', '.join(plan.manifest_paths)}) changed since {plan_path} was made; "
                             "nothing was changed. Make a new plan and review it")


def check_live_unchanged(plan: Plan, live, since: str, fix: str = "Make a new plan and review it") -> None:
    """The live state of the plan's stores is still the one it was made from (``since`` says when
    that was, for the message: "since plans/plan.json was made")."""
    stores = set(plan.managed_stores)
    if live.digest(only=stores) != plan.live_digest:
        changed = describe_drift(plan.observed, live.to_dict(only=stores))
        raise StalePlanError(f"the live state changed {since}; nothing was changed. What changed:\n{changed}\n{fix}")


def describe_drift(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Say, in a few lines, what changed in the live state since the plan was made."""
    from deepdiff import DeepDiff

    index = lambda state: {s["name"]: s for s in state.get("stores", [])}  # noqa: E731
    delta = DeepDiff(index(before), index(after), ignore_order=True, verbose_level=2)
    lines = []
    for kind, changes in delta.items():
        items = changes.items() if isinstance(changes, dict) else [(c, None) for c in changes]
        for where, change in list(items)[:10]:
            where = printable(str(where).replace("root", "", 1))
            if kind == "values_changed":
                lines.append(f"  {where}: {change['old_value']!r} -> {change['new_value']!r}")
            elif "added" in kind:
                lines.append(f"  {where}: added")
            elif "removed" in kind:
                lines.append(f"  {where}: removed")
            else:
                lines.append(f"  {where}: {kind.replace('_', ' ')}")
    return "\n".join(lines[:20]) or "  (the live state differs)"


def check_saved_steps(plan: Plan, plan_path: str, desired: Desired, live) -> None:
    """A saved plan's steps must be exactly what the planner makes from its (unchanged) manifests and
    (unchanged) live state at its creation time: the planner is deterministic, so anything else
    was edited into the file (its digest is a checksum, not a signature)."""
    saved = [s.to_dict() for s in plan.steps]
    created = plan.created_at or datetime.now().astimezone()
    # the file keeps whole seconds: the plan was made at some instant of that second, and a date
    # derived from it (now + the deletion window) was rounded up from there
    candidates = (created, created + timedelta(microseconds=999_999))
    if not any([s.to_dict() for s in diff(desired.state, live, now, allow_recent_use=plan.allow_recent_use)[0]]
               == saved for now in candidates):
        raise RefusedError(f"{plan_path}: its steps are not the ones its manifests and the live state give: the "
                           "file was edited, made by another version of reconciler, an alias outside its "
                           "stores changed, or CloudTrail shows a key of a decommission used since; nothing "
                           "was changed. Make a new plan and review it")


# -- any plan ----------------------------------------------------------------------------------


def check_plan_invariants(plan: Plan, desired: Desired) -> None:
    """Refuse a plan that touches a store no manifest names, or destroys in a store that is not
    ``state: absent`` (the planner never makes one; this guards what comes from a file)."""
    wanted = {s.name: s for s in desired.state.stores}
    stray = sorted({s.store for s in plan.steps if s.store not in wanted})
    if stray:
        raise RefusedError(f"the plan has steps for {', '.join(stray)}, which no manifest names; nothing was "
                           "changed. Make a new plan")
    unasked = sorted({s.id for s in plan.steps if s.destructive and wanted[s.store].state != "absent"})
    if unasked:
        raise RefusedError("the plan destroys in stores that are not declared 'state: absent': "
                           f"{', '.join(unasked)}; nothing was changed. Make a new plan")


def check_destroy(plan: Plan, allow_destroy: bool) -> None:
    destructive = [s for s in plan.steps if s.destructive]
    if destructive and not allow_destroy:
        listing = "\n".join(f"  - {s.id}" for s in destructive)
        raise RefusedError(f"the plan has {len(destructive)} destructive step(s) and --allow-destroy was not "
                           f"given; nothing was changed:\n{listing}\nReview them (deleting a key in a custom "
                           "key store is irreversible once its waiting period ends), then re-run with --allow-destroy")


def check_account(conn: Connection, desired: Desired, plan: Plan) -> None:
    """The account guard: stores with ``spec.account`` are changed only with credentials of it."""
    wanted = {s.name: s.account for s in desired.state.stores if s.account and
              any(step.store == s.name for step in plan.steps)}
    if not wanted:
        return
    actual = conn.account_id()
    wrong = sorted(name for name, account in wanted.items() if account != actual)
    if wrong:
        accounts = ", ".join(f"{n} (spec.account {wanted[n]})" for n in wrong)
        raise RefusedError(f"the credentials are for account {actual}, but {accounts} must be applied in "
                           "another account; nothing was changed. Use credentials for that account")


def preflight_secrets(plan: Plan, desired: Desired) -> None:
    """Resolve (and forget) every secret the plan's steps will send, before any step runs, so a
    missing environment variable refuses the apply instead of failing it half-way."""
    for step in plan.steps:
        params = step.params
        if params.get("secretAccessKey") == SENSITIVE:
            desired.inputs.secret_access_key(step.store)
        if params.get("keyStorePassword") == SENSITIVE:
            desired.inputs.key_store_password(step.store)
        if step.action.value == "create_store" and params.get("type") == "AWS_CLOUDHSM":
            desired.inputs.trust_anchor(step.store)


def check_preflight(plan: Plan, skip: bool) -> None:
    """Refuse, before any step, a plan whose preflight found a proxy KMS would fail on
    (reconciler.preflight), unless ``--skip-preflight``."""
    failures = plan.preflight_failures
    if not failures or skip:
        return
    lines = []
    for check in failures:
        what = " / ".join(x for x in (check.exception, check.code) if x)
        who = check.store + (f" / {check.key}" if check.key else "")
        lines.append(f"  {who}: {check.check}: {check.message}" + (f" (KMS: {what})" if what else ""))
    steps = sorted({s.id for s in plan.steps if s.store in {c.store for c in failures}})
    raise RefusedError("preflight found XKS proxy problems KMS would fail on; nothing was changed. Steps "
                       f"refused: {', '.join(steps)}.\n" + "\n".join(lines)
                       + "\nFix them (see the plan's preflight section), or pass --skip-preflight to apply anyway")
