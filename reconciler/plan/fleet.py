"""Fleets: the targets (account, region) of a repository's manifests, and one plan over them all.

A run is a fleet run when the manifests have a repository configuration (``reconciler.yaml``, see
:mod:`reconciler.manifest.repo_config`) or ``--target`` is given; otherwise it is the one-target
run of :mod:`.make`, unchanged. Each store belongs to the target of its ``spec.account`` (none:
whatever account the default credentials reach) and its region (``spec.region``, else
``--region``, else ``defaultRegion``, else ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else, in the
sandbox, us-east-1). Targets are read concurrently: each account and region has its own quotas,
so the whole takes about as long as the slowest target.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, Sequence

from reconciler import __version__
from reconciler.aws.connection import Connection, Target, env_region
from reconciler.aws.reach import AccountAccess, Reach
from reconciler.aws.regions import check_region
from reconciler.aws.targets import SANDBOX_DEFAULT_REGION
from reconciler.errors import UserError
from reconciler.plan.build import Desired, build_desired
from reconciler.plan.fleet_model import FleetPlan, Section
from reconciler.plan.make import build_plan, load_manifests, read_live_state
from reconciler.plan.model import Plan

TARGET_RE = re.compile(r"^([0-9]{12})/([a-z0-9-]+)$")
DEFAULT_ACCOUNT = "default"  # the key of stores without spec.account, until their credentials say


def parse_targets(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``--target ACCOUNT/REGION`` values, checked."""
    parsed = []
    for value in values:
        match = TARGET_RE.match(value)
        if not match:
            raise UserError(f"--target {value!r}: expected ACCOUNT/REGION, a 12-digit account id and a region, "
                            "e.g. --target 111122223333/us-east-1")
        check_region(match.group(2), "--target")
        parsed.append((match.group(1), match.group(2)))
    return tuple(parsed)


def fleet_config(paths: Sequence[str], targets: Sequence[str]):
    """The repository configuration when this is a fleet run (an empty one for ``--target`` without
    a ``reconciler.yaml``), else None: the one-target run."""
    from reconciler.manifest.repo_config import RepoConfig, load_repo_config

    config = load_repo_config(paths)
    if config is None and targets:
        return RepoConfig()
    return config


@dataclass
class FleetTarget:
    account: str | None  # spec.account; None: the account the default credentials reach
    region: str
    manifests: list = field(default_factory=list)


def default_region(target: Target, config) -> str | None:
    if target.region:
        check_region(target.region, "--region")
    return target.region or config.default_region or env_region() or (
        SANDBOX_DEFAULT_REGION if target.sandbox else None)


def group_targets(loaded, region: str | None) -> list[FleetTarget]:
    """The targets of the loaded manifests, sorted by account then region."""
    groups: dict[tuple[str, str], FleetTarget] = {}
    for entry in loaded.manifests:
        spec = entry.model.spec
        where = spec.region or region
        if where is None:
            raise UserError(f"{entry.source}: store {entry.name} has no region: set spec.region, defaultRegion in "
                            "reconciler.yaml, --region or AWS_REGION")
        key = (spec.account or "", where)
        groups.setdefault(key, FleetTarget(spec.account, where)).manifests.append(entry)
    return [groups[k] for k in sorted(groups)]


def selected(section_id: tuple[str, str], only: Sequence[tuple[str, str]]) -> bool:
    return not only or section_id in only


@dataclass
class FleetResult:
    plan: FleetPlan
    desired: dict[str, Desired]  # section id -> its desired state
    connections: dict[str, Connection] = field(default_factory=dict)


def desired_of(group: FleetTarget, paths: Sequence[str], allow_outside_root: bool) -> Desired:
    return build_desired(SimpleNamespace(manifests=group.manifests), group.region, list(paths),
                         allow_outside_root=allow_outside_root)


def connect_target(reach: Reach, config, group: FleetTarget) -> tuple[Connection, str]:
    """The target's connection (its clients made here, on the calling thread: making boto3 clients
    is not thread-safe) and the account its credentials reach, checked against ``spec.account``."""
    access: AccountAccess = config.access(group.account)
    conn = reach.connection(group.region, access, group.account)
    conn.kms  # noqa: B018 - the client, made now
    conn.client("cloudtrail")  # the evidence of use of keys a decommission schedules for deletion
    actual = conn.account_id()
    if group.account and actual != group.account:
        raise UserError(f"{access.describe()} reaches account {actual}, not {group.account}: the stores of "
                        f"{group.account}/{group.region} were not read. Fix the accounts entry of reconciler.yaml "
                        f"for {group.account} (or the default credentials)")
    return conn, actual


def _TARGET_ERRORS() -> tuple[type[BaseException], ...]:
    """What fails one target alone: a user-fixable problem, or AWS refusing or not answering."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (UserError, ClientError, BotoCoreError)


def target_error(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')} ({exc.operation_name})"
    return str(exc)


def plan_fleet(paths: Sequence[str], target: Target, config, *, only: Sequence[tuple[str, str]] = (),
               allow_outside_root: bool = False, reach: Reach, allow_recent_use: bool = False,
               on_target: Callable[[str], None] | None = None,
               annotate: Callable[[Plan, Desired, Any], Plan] | None = None) -> FleetResult:
    """Plan every target of ``paths`` (or the ``only`` ones) through ``reach``; ``annotate`` adds
    what is checked outside the planner to each target's plan (the preflight of its XKS proxies)."""
    from datetime import datetime, timezone

    loaded = load_manifests(list(paths), default_region=default_region(target, config))
    groups = group_targets(loaded, default_region(target, config))
    groups = [g for g in groups if g.account is None or selected((g.account, g.region), only)]
    desired = {}
    jobs: list[tuple[FleetTarget, Any]] = []
    sections: dict[int, Section] = {}
    for index, group in enumerate(groups):
        try:
            conn, actual = connect_target(reach, config, group)
        except _TARGET_ERRORS() as exc:
            sections[index] = Section(account=group.account or DEFAULT_ACCOUNT, region=group.region,
                                      error=target_error(exc))
            continue
        if not selected((actual, group.region), only):
            continue
        jobs.append((group, conn))
    if not groups and only:
        raise UserError(f"no store of the manifests is in {', '.join('/'.join(t) for t in only)}: check --target")

    def plan_one(job) -> tuple[Section, Desired]:
        group, conn = job
        wanted = desired_of(group, paths, allow_outside_root)
        live = read_live_state(conn, wanted)
        plan = build_plan(wanted, live, conn.now(), list(paths), conn.identity(), allow_recent_use=allow_recent_use)
        if annotate is not None:
            plan = annotate(plan, wanted, conn)
        return Section(account=conn.account_id(), region=group.region, plan=plan), wanted

    connections = {}
    with ThreadPoolExecutor(max_workers=max(1, len(jobs)), thread_name_prefix="plan-target") as pool:
        futures = {groups.index(group): (pool.submit(plan_one, (group, conn)), conn) for group, conn in jobs}
        for index, (future, conn) in futures.items():
            try:
                section, wanted = future.result()
            except _TARGET_ERRORS() as exc:
                section = Section(account=conn.account_id(), region=groups[index].region, error=target_error(exc))
            else:
                desired[section.id] = wanted
                connections[section.id] = conn
            sections[index] = section
            if on_target:
                on_target(section.id)
    ordered = tuple(sections[i] for i in sorted(sections))
    made = [s.plan.created_at for s in ordered if s.plan and s.plan.created_at]
    created = min(made) if made else datetime.now(timezone.utc).replace(microsecond=0)
    plan = FleetPlan(sections=ordered, created_at=created,
                     tool_version=__version__, manifest_paths=tuple(paths),
                     config_path=str(config.path) if config.path else None,
                     selection=tuple(f"{account}/{region}" for account, region in only))
    return FleetResult(plan=plan, desired=desired, connections=connections)


def desired_for_section(paths: Sequence[str], target: Target, config, account: str, region: str,
                        allow_outside_root: bool) -> Desired:
    """The desired state of one section of a saved fleet plan, from the manifests as they are now
    (stores without spec.account belong to the section of the account the credentials reach)."""
    loaded = load_manifests(list(paths), default_region=default_region(target, config))
    groups = {(g.account, g.region): g for g in group_targets(loaded, default_region(target, config))}
    group = groups.get((account, region)) or groups.get((None, region)) or FleetTarget(account, region)
    return desired_of(group, paths, allow_outside_root)


def read_fleet(paths: Sequence[str], target: Target, config, *, only: Sequence[tuple[str, str]] = (),
               reach: Reach) -> list[tuple[str, dict[str, str] | None, Any]]:
    """For ``status``: per target, ``(ACCOUNT/REGION, declared stores (name -> spec.state), live
    state or the error that kept it from being read)``. Without manifests, the ``only`` targets."""
    if paths:
        loaded = load_manifests(list(paths), default_region=default_region(target, config))
        groups = group_targets(loaded, default_region(target, config))
        groups = [g for g in groups if g.account is None or selected((g.account, g.region), only)]
    else:
        groups = [FleetTarget(account, region) for account, region in only]
    connected = []
    results: list[tuple[str, dict[str, str] | None, Any]] = []
    for group in groups:
        declared = ({e.name: getattr(e.model.spec.state, "value", e.model.spec.state) for e in group.manifests}
                    if paths else None)
        try:
            conn, actual = connect_target(reach, config, group)
        except _TARGET_ERRORS() as exc:
            results.append((f"{group.account or DEFAULT_ACCOUNT}/{group.region}", declared, target_error(exc)))
            continue
        if selected((actual, group.region), only):
            connected.append((f"{actual}/{group.region}", declared, conn))

    def read(item):
        ident, declared, conn = item
        try:
            return ident, declared, read_live_state(conn)
        except _TARGET_ERRORS() as exc:
            return ident, declared, target_error(exc)

    with ThreadPoolExecutor(max_workers=max(1, len(connected)), thread_name_prefix="status-target") as pool:
        results += list(pool.map(read, connected))
    return sorted(results, key=lambda r: r[0])


def plan_paths(paths: list[str], target: Target, targets: Sequence[str] = (), *, allow_outside_root: bool = False,
               allow_recent_use: bool = False, annotate: Any = None):
    """What ``reconciler plan`` makes of ``paths``: the plan of one target (a result whose ``.plan``
    is a :class:`~reconciler.plan.model.Plan`) or, with a reconciler.yaml beside the manifests or
    ``targets`` (``ACCOUNT/REGION`` values), of the fleet (a :class:`FleetPlan`)."""
    only = parse_targets(targets)
    config = fleet_config(paths, targets)
    if config is None:
        from reconciler.plan.make import make_plan

        return make_plan(paths, target, allow_outside_root=allow_outside_root, allow_recent_use=allow_recent_use,
                         annotate=annotate)
    with Reach(target) as reach:
        return plan_fleet(paths, target, config, only=only, allow_outside_root=allow_outside_root, reach=reach,
                          allow_recent_use=allow_recent_use, annotate=annotate)
