"""Applying a fleet plan: every account and region at once, each alone.

Each target (``ACCOUNT/REGION``) is applied as a saved one-target plan is, on its own thread: its
own lock, the checks of :mod:`.guards` (manifests, live state and steps unchanged, the account
guard on its credentials, secrets), then its steps. A target that fails (its role cannot be
assumed, it is refused, a step fails) fails alone: the others carry on, and the summary and the
exit code say which failed. Destruction without ``--allow-destroy`` and targets the manifests
name that the plan does not cover refuse the whole apply, before any target starts.

Each target's progress is printed as one block when it finishes (targets run in parallel), and
goes to a journal of its own (``plans/journal.jsonl`` -> ``plans/journal.ACCOUNT-REGION.jsonl``).
"""

from __future__ import annotations

import io
import json
import sys
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from reconciler.apply.guards import (
    check_account,
    check_destroy,
    check_live_unchanged,
    check_manifests_unchanged,
    check_plan_invariants,
    check_preflight,
    check_saved_steps,
    check_target,
    preflight_secrets,
)
from reconciler.apply.run import (
    ApplyRequest,
    _note_interrupted_run,
    apply_lock,
    execute_plan,
    refused_changes,
    rescues_only,
)
from reconciler.apply.signals import Stop, signals_stop
from reconciler.aws.reach import Reach
from reconciler.display import printable
from reconciler.errors import RefusedError, UserError
from reconciler.plan.files import is_plan_file, load_plan_file
from reconciler.plan.fleet import (
    FleetTarget,
    connect_target,
    desired_for_section,
    fleet_config,
    group_targets,
    default_region,
    parse_targets,
    plan_fleet,
    target_error,
)
from reconciler.plan.fleet_model import FleetPlan, Section
from reconciler.plan.make import load_manifests, read_live_state


class FleetStop(Stop):
    """SIGINT/SIGTERM during a fleet apply: every target stops gracefully."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[Stop] = []
        self._lock = threading.Lock()

    def request(self, name: str) -> None:
        self.signal = name
        with self._lock:
            for stop in self.targets:
                stop.request(name)

    def new_target(self) -> Stop:
        stop = Stop()
        with self._lock:
            self.targets.append(stop)
            if self.signal is not None:
                stop.request(self.signal)
        return stop


@dataclass
class TargetOutcome:
    id: str
    code: int  # 0 converged, 2 deferred, 1 failed or refused
    message: str = ""
    output: str = ""


def journal_for(path: str | None, section: Section) -> str | None:
    if not path:
        return None
    p = Path(path)
    return str(p.with_name(f"{p.stem}.{section.account}-{section.region}{p.suffix}"))


def fleet_config_of(args: list[str], targets: Sequence[str] = ()):
    """The repository configuration when ``apply ARGS`` is a fleet apply (a fleet plan file, a
    reconciler.yaml beside the manifests, or ``targets``), else None: one account and region."""
    from reconciler.manifest.repo_config import RepoConfig

    if is_plan_file(args):
        plan = load_plan_file(args[0])
        if isinstance(plan, FleetPlan):
            return fleet_config(list(plan.manifest_paths), targets) or RepoConfig()
        return None if not targets else RepoConfig()
    return fleet_config(args, targets)


def run_fleet_apply(request: ApplyRequest, config, *, print_plan: Callable[[Any, str], None],
                    confirm: Callable[[str], bool], targets: tuple[str, ...] = ()) -> int:
    """Apply every target of a fleet (a saved fleet plan, or the plan of ``request.args``)."""
    only = parse_targets(targets)
    saved = is_plan_file(request.args)
    out = sys.stdout
    with Reach(request.target) as reach:
        if saved:
            plan_path = request.args[0]
            plan = load_plan_file(plan_path)
            if not isinstance(plan, FleetPlan):
                raise RefusedError(f"{plan_path} is a plan of one account and region: apply it without --target")
            paths = list(plan.manifest_paths)
            config = fleet_config(paths, ()) or config
            if plan.selection:  # made with --target: it applies those targets (--target may narrow them)
                chosen = parse_targets(plan.selection)
                outside = [t for t in only if t not in chosen]
                if outside:
                    raise UserError(f"{plan_path} was made for {', '.join(plan.selection)} only, not "
                                    f"{', '.join('/'.join(t) for t in outside)}: check --target, or make a new plan")
                only = only or chosen
            _check_covers(plan, paths, request, config, only, plan_path)
            connections: dict[str, Any] = {}
        else:
            plan_path = "the plan"
            paths = list(request.args)
            result = plan_fleet(paths, request.target, config, only=only, reach=reach,
                                allow_outside_root=request.allow_outside_root,
                                allow_recent_use=request.allow_recent_use,
                                annotate=None if request.skip_preflight else _preflight)
            plan, connections = result.plan, result.connections
            if request.fmt == "text":
                print_plan(plan, "text")
        sections = [s for s in plan.sections if not only or (s.account, s.region) in only]
        if only and not sections:
            raise UserError(f"the plan has no target {', '.join('/'.join(t) for t in only)}: check --target")
        for section in sections:  # refuse destruction before any target starts
            if section.plan is not None:
                check_destroy(section.plan, request.allow_destroy)
        if not any(s.plan and (s.plan.steps or s.plan.refusals) for s in sections) and not any(s.error for s in sections):
            if request.fmt == "text":
                print("No changes. The live state matches the manifests.", file=out)
            return 0
        if not saved and not request.auto_approve:
            if not request.stdin_isatty():
                raise RefusedError("apply needs a confirmation, and there is no terminal to ask on: review the "
                                   "plan, then re-run with --auto-approve (or apply a saved plan file)")
            if not confirm("Apply these changes?"):
                print("Apply cancelled; nothing was changed.", file=out)
                return 1
        fleet_stop = FleetStop()
        print_lock = threading.Lock()
        since = f"since {plan_path} was made" if saved else "while the plan waited for confirmation"

        def one(section: Section) -> TargetOutcome:
            buffer = io.StringIO()
            try:
                outcome = _apply_section(request, reach, config, section, paths, connections.get(section.id),
                                         plan_path, since, buffer, fleet_stop.new_target())
            except Exception as exc:  # noqa: BLE001 - one target's failure must not stop the others
                outcome = TargetOutcome(section.id, 1, _message(exc))
            outcome.output = buffer.getvalue()
            with print_lock:
                if request.fmt == "text":
                    print("\n" + printable(f"=== Target {section.id} ==="), file=out)
                out.write(outcome.output)
                if outcome.message and request.fmt == "text":
                    print(printable(f"✗ {section.id}: {outcome.message}"), file=out)
                if request.fmt == "json":  # how the target ended, and why, with its events
                    print(json.dumps({"time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
                                      "event": "target-end", "target": section.id, "exitCode": outcome.code,
                                      "message": outcome.message or None}), file=out)
                out.flush()
            return outcome

        with signals_stop(fleet_stop, request.handle_signals), \
                ThreadPoolExecutor(max_workers=max(1, len(sections)), thread_name_prefix="apply-target") as pool:
            outcomes = list(pool.map(one, sections))
    return _report(outcomes, request, out)


def _preflight(plan: Any, desired: Any, conn: Any) -> Any:
    """A target's plan with the preflight of the XKS proxies its steps make KMS call."""
    from reconciler.preflight import annotate

    return annotate(plan, desired, conn=conn)


def _message(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    try:
        return target_error(exc)
    except Exception:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


def _check_covers(plan: FleetPlan, paths, request: ApplyRequest, config, only, plan_path: str) -> None:
    """A saved fleet plan must cover every target its manifests name now (with spec.account)."""
    loaded = load_manifests(list(paths), default_region=default_region(request.target, config))
    covered = {(s.account, s.region) for s in plan.sections}
    missing = sorted(f"{g.account}/{g.region}" for g in group_targets(loaded, default_region(request.target, config))
                     if g.account and (g.account, g.region) not in covered
                     and (not only or (g.account, g.region) in only))
    if missing:
        raise RefusedError(f"the manifests name {', '.join(missing)}, which {plan_path} does not cover: they changed "
                           "since it was made; nothing was changed. Make a new plan and review it")


def _apply_section(request: ApplyRequest, reach: Reach, config, section: Section, paths: list[str], conn: Any,
                   plan_path: str, since: str, out: io.StringIO, stop: Stop) -> TargetOutcome:
    if section.plan is None:
        return TargetOutcome(section.id, 1, f"not planned: {section.error}")
    plan = section.plan
    desired = desired_for_section(paths, request.target, config, section.account, section.region,
                                  request.allow_outside_root)
    check_manifests_unchanged(plan, plan_path, desired)
    if conn is None:
        conn, _ = connect_target(reach, config, FleetTarget(section.account, section.region))
    run_id = uuid.uuid4().hex[:12]
    journal = journal_for(request.journal_path, section)
    target_request = replace(request, journal_path=journal, handle_signals=False)
    with apply_lock(target_request, conn, run_id, account=section.account) as lock:
        if journal:
            _note_interrupted_run(journal, locked=lock is not None)
        check_target(plan, plan_path, conn.identity())
        live = read_live_state(conn, desired)
        check_live_unchanged(plan, live, since)
        check_saved_steps(plan, plan_path, desired, live)
        refusals = plan.refusals
        if refusals:  # only the rescues of keys pending deletion run (reconciler.apply.run.rescues_only)
            plan = rescues_only(plan)
            if plan is None:
                raise RefusedError(f"{refused_changes(refusals)}; fix the manifests")
        if not plan.steps:
            if request.fmt == "text":
                print("No changes. The live state matches the manifests.", file=out)
            return TargetOutcome(section.id, 0)
        check_plan_invariants(plan, desired)
        if not refusals:
            check_preflight(plan, request.skip_preflight)
        check_account(conn, desired, plan)
        preflight_secrets(plan, desired)
        stop.check()
        code = execute_plan(target_request, conn, plan, desired, paths, out, stop, run_id, partial=bool(refusals))
    if refusals:
        return TargetOutcome(section.id, 1, f"{refused_changes(refusals)}; only its rescues ran: fix the manifests")
    return TargetOutcome(section.id, code, "a step failed (above)" if code == 1 else "")


def _report(outcomes: list[TargetOutcome], request: ApplyRequest, out: Any) -> int:
    failed = [o for o in outcomes if o.code == 1]
    deferred = [o for o in outcomes if o.code == 2]
    if request.fmt == "text":
        print(f"\nFleet apply: {len(outcomes)} target(s): {len(outcomes) - len(failed) - len(deferred)} converged, "
              f"{len(deferred)} deferred, {len(failed)} failed.", file=out)
        for outcome in outcomes:
            state = {0: "converged", 2: "deferred steps remain (re-run after the date above)"}.get(
                outcome.code, f"FAILED: {outcome.message}")
            print(printable(f"  {outcome.id}: {state}"), file=out)
    if failed:
        return 1
    return 2 if deferred else 0
