"""What the commands do, in order: load manifests, read live state, plan, check, execute.

The CLI parses flags and picks exit codes; this module strings the pure parts (manifests,
planner, renderers) together with the parts that talk to AWS (reader, executor).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from reconciler import __version__
from reconciler.aws import Connection, Target, connect, env_region
from reconciler.errors import RefusedError, StalePlanError, UserError
from reconciler.plan.build import Desired, build_desired
from reconciler.plan.model import FORMAT_VERSION, Plan, iso, plan_digest
from reconciler.plan.planner import diff

SANDBOX_DEFAULT_REGION = "us-east-1"


# -- manifests -----------------------------------------------------------------------------------

def load_manifests(paths: list[str], *, default_region: str | None = None):
    from reconciler.manifest.loader import load

    result = load(paths, default_region=default_region)
    if result.problems:
        lines = "\n".join(str(p) for p in result.problems)
        raise UserError(f"the manifests are not valid ({len(result.problems)} problem(s)); "
                        f"fix them (see 'reconciler validate'):\n{lines}")
    return result


def validate_paths(paths: list[str], *, check_secrets: bool = False, allow_outside_root: bool = False,
                   default_region: str | None = None) -> tuple[list[Any], int]:
    """Offline checks; with ``check_secrets`` also resolve every secret reference (and forget it)."""
    from reconciler.manifest.loader import check_secrets as resolve_all, load

    result = load(paths, default_region=default_region)
    problems = list(result.problems)
    if not problems and check_secrets:
        problems = resolve_all(result.manifests, allow_outside_root=allow_outside_root)
    return problems, len(result.manifests)


def resolve_region(target: Target, loaded) -> str:
    if target.region:
        return target.region
    if env_region():
        return env_region()  # type: ignore[return-value]
    regions = sorted({m.model.spec.region for m in loaded.manifests if m.model.spec.region})
    if len(regions) == 1:
        return regions[0]
    if len(regions) > 1:
        raise UserError(f"the manifests name several regions ({', '.join(regions)}); "
                        "plan and apply one region at a time: pass --region")
    if target.sandbox:
        return SANDBOX_DEFAULT_REGION
    raise UserError("no AWS region: pass --region, set AWS_REGION, or set spec.region in the manifests")


# -- plan ----------------------------------------------------------------------------------------

def build_plan(desired: Desired, live, now: datetime, paths: list[str]) -> Plan:
    steps, findings = diff(desired.state, live, now)
    managed = sorted(desired.state.names())
    return Plan(
        region=desired.state.region, steps=steps, findings=findings, created_at=now,
        tool_version=__version__, manifests_digest=desired.digest,
        live_digest=live.digest(only=set(managed)), manifest_paths=tuple(paths),
        managed_stores=tuple(managed), observed=live.to_dict(only=set(managed)),
    )


def read_live_state(conn: Connection):
    from reconciler.live.reader import read_live

    return read_live(conn.kms, conn.region, now=conn.now)


@dataclass
class PlanResult:
    plan: Plan
    desired: Desired


def _desired_for(paths: list[str], target: Target, allow_outside_root: bool) -> Desired:
    loaded = load_manifests(paths, default_region=target.region or env_region())
    region = resolve_region(target, loaded)
    desired = build_desired(loaded, region, paths, allow_outside_root=allow_outside_root)
    for note in desired.skipped:
        print(f"Note: {note}", file=sys.stderr)
    return desired


def make_plan(paths: list[str], target: Target, *, allow_outside_root: bool = False) -> PlanResult:
    desired = _desired_for(paths, target, allow_outside_root)
    with connect(target, desired.state.region) as conn:
        live = read_live_state(conn)
        return PlanResult(build_plan(desired, live, conn.now(), paths), desired)


def save_plan(plan: Plan, path: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(plan.to_json(), encoding="utf-8")
    os.replace(tmp, target)


def load_plan_file(path: str) -> Plan:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such plan file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the plan file ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RefusedError(f"{path}: not a valid plan file (JSON error at line {exc.lineno}); "
                           "it may be truncated: make a new one with 'reconciler plan --out'") from None
    if not isinstance(data, dict) or "formatVersion" not in data:
        raise RefusedError(f"{path}: not a reconciler plan file (no formatVersion)")
    if data.get("formatVersion") != FORMAT_VERSION:
        raise RefusedError(f"{path}: plan formatVersion {data.get('formatVersion')!r} is not supported by "
                           f"reconciler {__version__} (expects {FORMAT_VERSION}); make a new plan")
    if data.get("planDigest") != plan_digest(data):
        raise RefusedError(f"{path}: the plan file's digest does not match its content: it was edited or "
                           "damaged after 'reconciler plan' wrote it; make a new plan")
    try:
        return Plan.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise RefusedError(f"{path}: malformed plan file ({exc.__class__.__name__}: {exc}); make a new plan") from None


def describe_drift(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Say, in a few lines, what changed in the live state since the plan was made."""
    from deepdiff import DeepDiff

    index = lambda state: {s["name"]: s for s in state.get("stores", [])}  # noqa: E731
    delta = DeepDiff(index(before), index(after), ignore_order=True, verbose_level=2)
    lines = []
    for kind, changes in delta.items():
        items = changes.items() if isinstance(changes, dict) else [(c, None) for c in changes]
        for where, change in list(items)[:10]:
            where = str(where).replace("root", "", 1)
            if kind == "values_changed":
                lines.append(f"  {where}: {change['old_value']!r} -> {change['new_value']!r}")
            elif "added" in kind:
                lines.append(f"  {where}: added")
            elif "removed" in kind:
                lines.append(f"  {where}: removed")
            else:
                lines.append(f"  {where}: {kind.replace('_', ' ')}")
    return "\n".join(lines[:20]) or "  (the live state differs)"


# -- apply ---------------------------------------------------------------------------------------

@dataclass
class ApplyRequest:
    args: list[str]
    target: Target
    auto_approve: bool = False
    allow_destroy: bool = False
    timeout_seconds: float = 1200.0
    fmt: str = "text"
    journal_path: str | None = "plans/journal.jsonl"
    allow_outside_root: bool = False
    stdin_isatty: Callable[[], bool] = field(default=lambda: sys.stdin.isatty())


def is_plan_file(args: list[str]) -> bool:
    if len(args) != 1 or not args[0].endswith(".json"):
        return False
    return Path(args[0]).is_file()


def check_account(conn: Connection, desired: Desired, plan: Plan) -> None:
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
    from reconciler.plan.model import SENSITIVE

    for step in plan.steps:
        params = step.params
        if params.get("secretAccessKey") == SENSITIVE:
            desired.inputs.secret_access_key(step.store)
        if params.get("keyStorePassword") == SENSITIVE:
            desired.inputs.key_store_password(step.store)
        if step.action.value == "create_store" and params.get("type") == "AWS_CLOUDHSM":
            desired.inputs.trust_anchor(step.store)


def check_destroy(plan: Plan, allow_destroy: bool) -> None:
    destructive = [s for s in plan.steps if s.destructive]
    if destructive and not allow_destroy:
        listing = "\n".join(f"  - {s.id}" for s in destructive)
        raise RefusedError(f"the plan has {len(destructive)} destructive step(s) and --allow-destroy was not "
                           f"given; nothing was changed:\n{listing}\nReview them (deleting a key in a custom "
                           "key store is irreversible once its waiting period ends), then re-run with --allow-destroy")


def run_apply(request: ApplyRequest, *, print_plan: Callable[[Plan, str], None],
              confirm: Callable[[str], bool]) -> int:
    from reconciler.apply.executor import Executor, ExecutorOptions, Redactor
    from reconciler.apply.journal import Journal
    from reconciler.apply.progress import Progress

    saved = is_plan_file(request.args)
    if saved:
        plan_path = request.args[0]
        saved_plan = load_plan_file(plan_path)
        if request.target.region and request.target.region != saved_plan.region:
            raise RefusedError(f"{plan_path} is a plan for region {saved_plan.region}, not {request.target.region}")
        paths = list(saved_plan.manifest_paths)
        target = Target(**{**request.target.__dict__, "region": saved_plan.region})
        desired = _desired_for(paths, target, request.allow_outside_root)
        if desired.digest != saved_plan.manifests_digest:
            raise StalePlanError(f"the manifests ({', '.join(paths)}) changed since {plan_path} was made; "
                                 "nothing was changed. Make a new plan and review it")
    else:
        desired = _desired_for(request.args, request.target, request.allow_outside_root)
        paths = request.args

    out = sys.stdout
    with connect(request.target if not saved else target, desired.state.region) as conn:
        live = read_live_state(conn)
        if saved:
            now_digest = live.digest(only=set(saved_plan.managed_stores))
            if now_digest != saved_plan.live_digest:
                changed = describe_drift(saved_plan.observed, live.to_dict(only=set(saved_plan.managed_stores)))
                raise StalePlanError(f"the live state changed since {plan_path} was made; nothing was changed. "
                                     f"What changed:\n{changed}\nMake a new plan and review it")
            plan = saved_plan
        else:
            plan = build_plan(desired, live, conn.now(), paths)
            if request.fmt == "text":
                print_plan(plan, "text")
        if plan.refusals:
            raise RefusedError("the plan refuses some changes (listed above); fix the manifests, then apply")
        if not plan.steps:
            if request.fmt == "text" and saved:
                print("No changes. The live state matches the manifests.", file=out)
            return 0
        check_destroy(plan, request.allow_destroy)
        if not saved and not request.auto_approve:
            if not request.stdin_isatty():
                raise RefusedError("apply needs a confirmation, and there is no terminal to ask on: review the "
                                   "plan, then re-run with --auto-approve (or apply a saved plan file)")
            if not confirm("Apply these changes?"):
                print("Apply cancelled; nothing was changed.", file=out)
                return 1
        check_account(conn, desired, plan)
        preflight_secrets(plan, desired)

        redactor = Redactor()
        journal = Journal(request.journal_path)
        run_id = uuid.uuid4().hex[:12]
        progress = Progress(fmt=request.fmt, stream=out, journal=journal, run_id=run_id, redact=redactor,
                            now=conn.now)
        progress({"event": "run-start", "plan": plan.to_dict()["planDigest"], "region": plan.region,
                  "steps": len(plan.steps), "manifests": list(paths)})
        try:
            executor = Executor(conn, plan, desired.inputs, emit=progress, redactor=redactor,
                                options=ExecutorOptions(timeout_seconds=request.timeout_seconds))
            result = executor.run()
        finally:
            progress.close()
        counts = {o: len(result.by_outcome(o)) for o in ("ok", "failed", "skipped", "deferred")}
        rerun = result.rerun_after()
        progress({"event": "run-end", **counts, "rerunAfter": iso(rerun)})
        journal.close()

    if request.fmt == "text":
        print(f"\nApply: {counts['ok']} done, {counts['failed']} failed, {counts['skipped']} skipped, "
              f"{counts['deferred']} deferred.", file=out)
        for failed in result.by_outcome("failed"):
            print(f"  ✗ {failed.step.id}: {redactor(failed.message)}", file=out)
        if counts["skipped"]:
            print("  skipped because a step they depend on failed: "
                  + ", ".join(r.step.id for r in result.by_outcome("skipped")), file=out)
    if result.failed:
        return 1
    if result.deferred:
        if request.fmt == "text":
            when = iso(rerun) if rerun else "the deferred date"
            print(f"Deferred steps remain: re-run after {when} to finish "
                  f"({', '.join(r.step.id for r in result.deferred)}).", file=out)
        return 2
    if request.fmt == "text":
        print("Converged: the live state matches the manifests.", file=out)
    return 0
