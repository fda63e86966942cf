"""Making a plan: the manifests (loaded, their region resolved), the live state (read through a
connection), and the pure planner between them.

The planner (:mod:`.planner`) decides; this module only gathers its inputs and wraps its output
in a :class:`~reconciler.plan.model.Plan` with what apply needs to check it later (digests, the
observed state, the target).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable

from reconciler import __version__
from reconciler.aws.connection import Connection, Target, connect, env_region
from reconciler.aws.targets import resolve_region
from reconciler.errors import UserError
from reconciler.plan.build import Desired, build_desired
from reconciler.plan.model import Plan
from reconciler.plan.planner import diff
from reconciler.plan.rescue import schedules


def load_manifests(paths: list[str], *, default_region: str | None = None):
    """The manifests of ``paths``, every one valid, or :class:`UserError` listing every problem."""
    from reconciler.manifest.loader import load

    result = load(paths, default_region=default_region)
    if result.problems:
        lines = "\n".join(str(p) for p in result.problems)
        raise UserError(f"the manifests are not valid ({len(result.problems)} problem(s)); "
                        f"fix them (see 'reconciler validate'):\n{lines}")
    return result


def desired_for(paths: list[str], target: Target, allow_outside_root: bool) -> Desired:
    """The desired state of ``paths`` for the target's region (manifests of other regions are left
    out, with a note on stderr)."""
    loaded = load_manifests(paths, default_region=target.region or env_region())
    region = resolve_region(target, loaded)
    desired = build_desired(loaded, region, paths, allow_outside_root=allow_outside_root)
    for note in desired.skipped:
        print(f"Note: {note}", file=sys.stderr)
    return desired


def read_live_state(conn: Connection, desired: Desired | None = None):
    """The live state of the connection's region: with ``desired``, the alias index is restricted
    to what the planner needs, and the origin cache is used (see :func:`read_live_cli`)."""
    from reconciler.live.reader import read_live_cli

    live = read_live_cli(conn.kms, conn.region, now=conn.now,
                         desired=desired.state if desired is not None else None)
    if desired is None:
        return live
    return replace(live, evidence=read_evidence_for(conn, desired, live))


EVIDENCE_NOTE_SECONDS = 30.0  # a CloudTrail read expected to take longer is announced on stderr


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if minutes < 2 else f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def read_evidence_for(conn: Connection, desired: Desired, live):
    """CloudTrail's evidence of use of the keys a decommission may schedule for deletion (every
    key, not pending deletion, of a store declared absent); None when there is none to look up."""
    import time

    from reconciler.live.usage import lookup_rate, read_evidence

    arns = [k.arn for s in desired.state.stores if s.state == "absent" and s.name in live.stores
            for k in live.stores[s.name].keys if not k.pending_deletion]
    if not arns:
        return None
    seconds = len(arns) / lookup_rate()
    if seconds >= EVIDENCE_NOTE_SECONDS and conn.sandbox is None:  # the sandbox's waits take no time
        print(f"Note: reading CloudTrail's evidence of use of {len(arns):,} key(s) before the plan: one "
              f"LookupEvents per key, under CloudTrail's quota ({lookup_rate():.2g} a second): about "
              f"{_duration(seconds)}.", file=sys.stderr, flush=True)
    if conn.sandbox is not None:  # paced on the emulator's clock, like the executor
        clock, sleep = (lambda: conn.now().timestamp()), conn.sleep
    else:
        clock, sleep = time.monotonic, time.sleep
    return read_evidence(conn.client("cloudtrail"), arns, conn.now(), clock=clock, sleep=sleep)


def build_plan(desired: Desired, live, now: datetime, paths: list[str],
               target: dict[str, Any] | None = None, *, allow_recent_use: bool = False) -> Plan:
    steps, findings = diff(desired.state, live, now, allow_recent_use=allow_recent_use)
    managed = sorted(desired.state.names())
    return Plan(
        region=desired.state.region, steps=steps, findings=findings, created_at=now,
        tool_version=__version__, manifests_digest=desired.digest,
        live_digest=live.digest(only=set(managed)), manifest_paths=tuple(paths),
        managed_stores=tuple(managed), observed=live.to_dict(only=set(managed)), target=target or {},
        allow_recent_use=allow_recent_use, rescue_window=schedules(desired.state, live, steps, now, target),
    )


@dataclass
class PlanResult:
    plan: Plan
    desired: Desired


def make_plan(paths: list[str], target: Target, *, allow_outside_root: bool = False,
              allow_recent_use: bool = False,
              annotate: Callable[[Plan, Desired, Connection], Plan] | None = None) -> PlanResult:
    """``reconciler plan``: the plan of ``paths`` against the target; ``annotate`` (the preflight
    of XKS proxies) adds to the made plan while the connection is open."""
    desired = desired_for(paths, target, allow_outside_root)
    with connect(target, desired.state.region) as conn:
        live = read_live_state(conn, desired)
        plan = build_plan(desired, live, conn.now(), paths, conn.identity(), allow_recent_use=allow_recent_use)
        return PlanResult(annotate(plan, desired, conn) if annotate else plan, desired)


def read_declared_and_live(target: Target, paths: list[str]):
    """For ``status`` and ``export``: the region (from the flags, the environment, the manifests or
    the sandbox default), the stores the manifests declare for it (name -> spec.state; None
    without manifests), and the live state."""
    from types import SimpleNamespace

    declared = None
    loaded: Any = SimpleNamespace(manifests=[])
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
