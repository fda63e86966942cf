"""The library API: ``load``, ``plan``, ``preflight``, ``apply`` and ``status`` for Python callers
(bots, portals).

Each returns the typed value the CLI renders: ``plan`` the :class:`~reconciler.plan.model.Plan`
(``plan.to_dict()`` is exactly ``reconciler plan --format json``), ``apply`` an
:class:`ApplyResult` holding the exit code and the events of ``reconciler apply --format json``,
``preflight`` the checks of ``reconciler preflight`` (each ``to_dict()`` as ``--format json``
prints it), ``status`` the :class:`~reconciler.live.status.StatusReport` (``to_dict()`` is ``reconciler status
--format json``). They call the same functions the commands call. Errors a user can cause raise
:class:`reconciler.errors.UserError` (``exit_code`` says what the CLI would exit with). See docs/api.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence, TypedDict, Union

from reconciler.aws.connection import Target
from reconciler.errors import UserError
from reconciler.live.status import FleetStatus, StatusReport
from reconciler.plan.fleet_model import FleetPlan
from reconciler.plan.model import Plan, PreflightCheck

__all__ = ["ApplyResult", "Event", "FleetPlan", "FleetStatus", "Target", "UserError", "apply", "load", "plan",
           "preflight", "status", "target"]


class Event(TypedDict, total=False):
    """One apply event, as ``reconciler apply --format json`` prints it and the journal records it
    (docs/schemas/apply-event.schema.json)."""

    event: Literal["run-start", "start", "wait", "ok", "failed", "skipped", "deferred", "run-end", "target-end"]
    time: str
    run: str
    step: str
    action: str
    store: str
    message: str
    account: str  # run-start
    region: str  # run-start
    target: str  # target-end: ACCOUNT/REGION
    exitCode: int  # target-end


@dataclass
class ApplyResult:
    exit_code: int  # 0 converged, 2 deferred steps remain (the CLI's exit codes)
    events: list[Event] = field(default_factory=list)

    @property
    def converged(self) -> bool:
        return self.exit_code == 0

    @property
    def deferred(self) -> bool:
        return self.exit_code == 2

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.get("event") == kind]


def target(*, region: str | None = None, profile: str | None = None, endpoint_url: str | None = None,
           sandbox: bool = False, sandbox_dir: str | None = None) -> Target:
    """Where to connect, as the CLI's connection flags say it (``sandbox=True``: the embedded emulator)."""
    from reconciler.aws.targets import make_target

    return make_target(profile, region, endpoint_url, sandbox, sandbox_dir)


def _paths(paths: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> list[str]:
    return [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]


def _targets(targets: Union[str, Sequence[str]]) -> tuple[str, ...]:
    return (targets,) if isinstance(targets, str) else tuple(targets)


def load(paths, *, region: str | None = None):
    """The manifests of ``paths`` (files or directories), validated offline as ``reconciler validate``
    does: a :class:`reconciler.manifest.loader.LoadResult` whose ``problems`` lists every problem
    (``str(problem)`` is ``FILE:LINE:COL: message``) and ``manifests`` the valid ones. A
    reconciler.yaml beside the manifests (or given as a path) is checked too, and its problems are
    among ``problems``."""
    from dataclasses import replace

    from reconciler.manifest.loader import load as load_manifests
    from reconciler.manifest.repo_config import repo_config_issues, split_repo_configs

    configs, manifest_paths = split_repo_configs(_paths(paths))
    result = load_manifests(manifest_paths, default_region=region) if manifest_paths or not configs else None
    extra = [problem for path in configs for problem in repo_config_issues(path)]
    if result is None:
        from reconciler.manifest.loader import LoadResult

        return LoadResult(manifests=[], problems=extra, files=[])
    return replace(result, problems=result.problems + extra) if extra else result


def plan(paths, *, target: Target, targets: Sequence[str] = (), allow_outside_root: bool = False,
         allow_recent_use: bool = False) -> Union[Plan, FleetPlan]:
    """The plan of ``paths`` against ``target`` (read-only), with the preflight of the XKS proxies
    its steps make KMS call (``plan.preflight``). ``plan.has_changes``, ``plan.refusals`` and
    ``plan.preflight_failures`` give the CLI's exit code (2, or 1 when the plan refuses a change or
    a preflight check failed). ``allow_recent_use`` is ``--allow-recent-use``: schedule the deletion
    of keys CloudTrail shows in use within ``refuseIfUsedWithinDays`` instead of refusing it.

    With a reconciler.yaml beside the manifests, or ``targets`` (``--target ACCOUNT/REGION``
    values), it is the plan of the fleet, as the CLI makes it: a
    :class:`~reconciler.plan.fleet_model.FleetPlan` with a section per account and region
    (``.sections``, each with its ``.plan`` or the ``.error`` that kept the target from being read;
    ``.failed`` lists those), and the same ``.steps``, ``.refusals``, ``.has_changes`` and
    ``.to_dict()``."""
    from reconciler.plan.fleet import plan_paths
    from reconciler.preflight import annotate

    return plan_paths(_paths(paths), target, _targets(targets), allow_outside_root=allow_outside_root,
                      allow_recent_use=allow_recent_use,
                      annotate=lambda made, desired, conn: annotate(made, desired, conn=conn)).plan


def preflight(paths, *, target: Target, allow_outside_root: bool = False) -> list[PreflightCheck]:
    """The checks ``reconciler preflight`` makes of the XKS proxy of every present external key
    store of ``paths`` (DNS, TLS, health with the manifest's credential, latency, the EKM fleet,
    every declared xksKeyId), as :class:`~reconciler.plan.model.PreflightCheck` values:
    ``.status`` is ``ok``, ``warn``, ``fail`` or ``not_checked``, and ``to_dict()`` is one entry of
    ``reconciler preflight --format json``. Nothing is changed; no secret is in a result. The CLI
    exits 1 when any ``status`` is ``fail``."""
    from reconciler.plan.make import desired_for
    from reconciler.preflight import check_all

    return check_all(desired_for(_paths(paths), target, allow_outside_root), target)


def apply(plan_or_paths, *, target: Target, targets: Sequence[str] = (), allow_destroy: bool = False,
          timeout_seconds: float = 1200.0,
          journal_path: str | None = None, lock_table: str | None = None, allow_outside_root: bool = False,
          on_event: Callable[[Event], None] | None = None, skip_preflight: bool = False,
          allow_recent_use: bool = False) -> ApplyResult:
    """Apply a :class:`Plan` (from :func:`plan`, applied exactly, after the checks of ``reconciler apply
    PLANFILE``: nothing changed since it was made) or plan ``paths`` and apply at once (calling this
    is the approval ``--auto-approve`` gives). A refusal raises :class:`UserError` before anything
    changes, except the plan's rescues of keys pending deletion, which run first (a failed preflight check of an XKS proxy too, unless ``skip_preflight``; scheduling the
    deletion of a recently used key too, unless ``allow_recent_use``); a failed step is ``exit_code``
    1 and a ``failed`` event. A fleet (a :class:`~reconciler.plan.fleet_model.FleetPlan`, a
    reconciler.yaml beside the manifests, or ``targets``) is applied as ``reconciler apply`` applies
    it: every target at once, ``exit_code`` 1 when any failed; each target's events follow its
    ``run-start``, which names its ``account`` and ``region``, and end with a ``target-end`` event
    (``target``, its ``exitCode``, and the ``message`` that says why it failed or was refused)."""
    from reconciler.apply.fleet import fleet_config_of, run_fleet_apply
    from reconciler.apply.run import ApplyRequest, run_apply

    events: list[Event] = []
    with tempfile.TemporaryDirectory(prefix="reconciler-api-") as tmp:
        if isinstance(plan_or_paths, (Plan, FleetPlan)):
            from reconciler.plan.files import save_plan

            args = [os.path.join(tmp, "plan.json")]
            save_plan(plan_or_paths, args[0])
        else:
            args = _paths(plan_or_paths)
        config = fleet_config_of(args, _targets(targets))
        request = ApplyRequest(args=args, target=target, auto_approve=True, allow_destroy=allow_destroy,
                               timeout_seconds=timeout_seconds, fmt="json", journal_path=journal_path,
                               allow_outside_root=allow_outside_root, lock_table=lock_table,
                               stdin_isatty=lambda: False, skip_preflight=skip_preflight,
                               allow_recent_use=allow_recent_use)
        stream = _EventStream(events, on_event, sys.stdout)
        with contextlib.redirect_stdout(stream):  # --format json: one event per line, nothing else
            if config is not None:  # a fleet: every target at once, as the CLI applies it
                code = run_fleet_apply(request, config, print_plan=lambda *_: None, confirm=lambda _: False,
                                       targets=_targets(targets))
            else:
                code = run_apply(request, print_plan=lambda *_: None, confirm=lambda _: False)
        stream.flush_rest()
    return ApplyResult(code, events)


def status(paths=(), *, target: Target, targets: Sequence[str] = ()) -> Union[StatusReport, FleetStatus]:
    """Every live store of the target's region; with ``paths``, which ones the manifests manage.
    With a reconciler.yaml beside the manifests, or ``targets``, every account and region: a
    :class:`~reconciler.live.status.FleetStatus` (``.targets``: each ``ACCOUNT/REGION`` with its
    report, or why it could not be read; ``.failed``; ``to_dict()`` is ``status --format json``)."""
    from reconciler.live.status import build_status
    from reconciler.plan.fleet import fleet_config
    from reconciler.plan.make import read_declared_and_live

    config = fleet_config(_paths(paths), _targets(targets))
    if config is not None:
        from reconciler.aws.reach import Reach
        from reconciler.live.status import fleet_status
        from reconciler.plan.fleet import parse_targets, read_fleet

        with Reach(target) as reach:
            return fleet_status(read_fleet(_paths(paths), target, config, only=parse_targets(_targets(targets)), reach=reach))
    declared, live = read_declared_and_live(target, _paths(paths))
    return build_status(live, declared)


class _EventStream(io.TextIOBase):
    """Collects the JSON lines of ``apply --format json`` as events."""

    def __init__(self, events: list[Event], on_event: Callable[[Event], None] | None, stdout: Any) -> None:
        self.events, self.on_event, self.stdout, self._buffer = events, on_event, stdout, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        try:
            event: Any = json.loads(line)
        except ValueError:
            return
        if isinstance(event, dict) and "event" in event:
            self.events.append(event)
            if self.on_event is not None:
                with contextlib.redirect_stdout(self.stdout):  # the caller's prints go where they would
                    self.on_event(event)

    def flush_rest(self) -> None:
        if self._buffer.strip():
            self._line(self._buffer)
        self._buffer = ""
