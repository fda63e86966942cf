"""The run of an apply: plan (or load a saved plan), check it, take the lock, execute, report.

``reconciler apply`` parses flags into an :class:`ApplyRequest` and calls :func:`run_apply`, which
returns the exit code: 0 converged, 2 deferred steps remain, 1 a step failed. Every refusal raises
before the first step (see :mod:`.guards`), so "nothing was changed" is true when it says so.
"""

from __future__ import annotations

import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator

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
from reconciler.apply.signals import Stop, signals_stop
from reconciler.aws.connection import Connection, Target, connect, env_region
from reconciler.display import printable
from reconciler.errors import RefusedError, UserError
from reconciler.plan.files import is_plan_file, load_plan_file
from reconciler.plan.make import build_plan, desired_for, read_live_state
from reconciler.plan.model import Plan, iso


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
    # DynamoDB lock table (Terraform S3 backend convention); None: no table (--sandbox always
    # locks with its local lock file)
    lock_table: str | None = None
    lock_timeout_seconds: float = 0.0
    # SIGINT/SIGTERM: finish the steps in flight, start no other, release the lock (main thread only)
    handle_signals: bool = False
    # schedule the deletion of keys CloudTrail shows in use (the plan refuses otherwise)
    allow_recent_use: bool = False
    # apply even when a preflight check of an XKS proxy failed
    skip_preflight: bool = False


def limiter_for(conn: Connection):
    """The executor's rate limiter, paced on the connection's clock: wall time against AWS; in the
    embedded sandbox the emulator's clock, where waiting advances virtual time (a connection
    that takes minutes polls in milliseconds there, and must not be paced in real seconds)."""
    from reconciler.aws.ratelimit import RateLimiter

    if conn.sandbox is None:
        return RateLimiter()
    return RateLimiter(clock=lambda: conn.now().timestamp(), sleep=conn.sleep)


@contextmanager
def apply_lock(request: ApplyRequest, conn: Connection, run_id: str, account: str | None = None) -> Iterator[Any]:
    """Hold the apply lock for the account and region (see :mod:`reconciler.apply.lock`); in the
    sandbox, ``account`` gives each account of a fleet a lock of its own."""
    from reconciler.apply.lock import DynamoDBLock, FileLock, LockInfo, held, lock_id, sandbox_lock_path
    from reconciler.aws.connection import client_config

    if conn.sandbox is not None:
        backend: Any = FileLock(sandbox_lock_path(conn.sandbox.directory, conn.region, account))
        path = backend.name
    elif request.lock_table:
        client = conn.session.client("dynamodb", region_name=conn.region, config=client_config())
        path = lock_id(conn.account_id(), conn.region)
        backend = DynamoDBLock(client, request.lock_table, path, profile=request.target.profile,
                               endpoint_url=conn.endpoint_url)
    else:
        yield None
        return

    def waiting(holder: LockInfo) -> None:
        print(f"Waiting up to {request.lock_timeout_seconds:g}s for the lock on {backend.name}, held by "
              f"{holder.describe()}...", file=sys.stderr, flush=True)

    with held(backend, LockInfo.for_this_process(run_id, path), timeout_seconds=request.lock_timeout_seconds,
              on_wait=waiting) as info:
        yield info


def force_unlock(table: str, run_id: str, *, region: str | None, profile: str | None,
                 endpoint_url: str | None = None):
    """``reconciler force-unlock``: delete the lock item of ``run_id`` (only that run's). The lock's
    account is found as apply found it: STS at ``endpoint_url`` when the apply had one; the table is
    reached as apply reached it (the default endpoint, or AWS_ENDPOINT_URL_DYNAMODB)."""
    import boto3

    from reconciler.apply.lock import DynamoDBLock, lock_id
    from reconciler.aws.connection import client_config
    from reconciler.aws.regions import check_region
    from reconciler.aws.targets import check_endpoint_url

    region = region or env_region()
    if not region:
        raise UserError("no AWS region: pass --region (the region of the apply whose lock this is) or set AWS_REGION")
    check_region(region, "--region")
    session = boto3.Session(profile_name=profile, region_name=region)
    check_endpoint_url(endpoint_url)
    sts = {"endpoint_url": endpoint_url} if endpoint_url else {}
    account = session.client("sts", region_name=region, config=client_config(), **sts).get_caller_identity()["Account"]
    client = session.client("dynamodb", region_name=region, config=client_config())
    return DynamoDBLock(client, table, lock_id(account, region)).force_unlock(run_id)


def _note_interrupted_run(journal_path: str | None, *, locked: bool) -> None:
    from reconciler.apply.journal import interrupted_run

    if not journal_path:
        return
    last = interrupted_run(journal_path)
    if last is None:
        return
    what = f"'{last['lastStep']}'" if last.get("lastStep") else "its run-start, before any step"
    # under the apply lock the previous run cannot still be running; without one it might be
    status = "did not finish" if locked else "has not recorded its end (it was interrupted, or is still running)"
    print(f"Note: the previous apply (run {last.get('run')}, started {last.get('time')}) {status}; its last "
          f"entry in {journal_path} is {what}. This run reads the live state afresh and carries on from there.",
          file=sys.stderr)


def run_apply(request: ApplyRequest, *, print_plan: Callable[[Plan, str], None],
              confirm: Callable[[str], bool]) -> int:
    from reconciler.apply.journal import check_journal_path

    check_journal_path(request.journal_path)

    if request.lock_table and request.target.sandbox:
        raise UserError("--lock-table is for AWS (or a served sandbox, with AWS_ENDPOINT_URL_DYNAMODB): the "
                        "embedded sandbox keeps no DynamoDB table between processes, and --sandbox applies "
                        "already lock each other out with the sandbox's lock file; leave out --lock-table")
    saved = is_plan_file(request.args)
    if saved:
        plan_path = request.args[0]
        saved_plan = load_plan_file(plan_path)
        if request.target.region and request.target.region != saved_plan.region:
            raise RefusedError(f"{plan_path} is a plan for region {saved_plan.region}, not {request.target.region}: "
                               "apply it with the connection flags it was made with, or make a new plan")
        paths = list(saved_plan.manifest_paths)
        target = Target(**{**request.target.__dict__, "region": saved_plan.region})
        desired = desired_for(paths, target, request.allow_outside_root)
        check_manifests_unchanged(saved_plan, plan_path, desired)
    else:
        desired = desired_for(request.args, request.target, request.allow_outside_root)
        paths = request.args
        target = request.target

    out = sys.stdout
    run_id = uuid.uuid4().hex[:12]
    stop = Stop()
    with connect(target, desired.state.region) as conn, apply_lock(request, conn, run_id) as lock, \
            signals_stop(stop, request.handle_signals):
        _note_interrupted_run(request.journal_path, locked=lock is not None)
        if saved:
            check_target(saved_plan, plan_path, conn.identity())
        live = read_live_state(conn, desired)
        if saved:
            check_live_unchanged(saved_plan, live, f"since {plan_path} was made")
            check_saved_steps(saved_plan, plan_path, desired, live)
            plan = saved_plan
        else:
            plan = build_plan(desired, live, conn.now(), paths, conn.identity(),
                              allow_recent_use=request.allow_recent_use)
            if not request.skip_preflight:
                from reconciler.preflight import annotate

                plan = annotate(plan, desired, conn=conn)
            if request.fmt == "text":
                print_plan(plan, "text")
        refusals = plan.refusals
        if refusals:  # nothing runs, except the rescues of keys pending deletion (see rescues_only)
            plan = rescues_only(plan)
            if plan is None:
                raise RefusedError(f"{refused_changes(refusals)}; fix the manifests, then apply")
            print(printable(f"{refused_changes(refusals)}. Only its {len(plan.steps)} rescue(s) of keys pending "
                            "deletion run now: their deletion dates do not wait for the manifests to be fixed."),
                  file=out if request.fmt == "text" else sys.stderr)
        if not plan.steps:
            if request.fmt == "text" and saved:
                print("No changes. The live state matches the manifests.", file=out)
            return 0
        check_plan_invariants(plan, desired)
        check_destroy(plan, request.allow_destroy)
        if not refusals:  # a rescue makes KMS call no proxy
            check_preflight(plan, request.skip_preflight)
        if not saved and not request.auto_approve:
            if not request.stdin_isatty():
                raise RefusedError("apply needs a confirmation, and there is no terminal to ask on: review the "
                                   "plan, then re-run with --auto-approve (or apply a saved plan file)")
            if not confirm("Apply these changes?"):
                print("Apply cancelled; nothing was changed.", file=out)
                return 1
            # a confirmation can take minutes: refuse if the live state moved meanwhile
            check_live_unchanged(plan, read_live_state(conn, desired), "while the plan waited for confirmation",
                                 "Run apply again")
        check_account(conn, desired, plan)
        preflight_secrets(plan, desired)
        stop.check()
        code = execute_plan(request, conn, plan, desired, paths, out, stop, run_id, partial=bool(refusals))
    if refusals:
        raise RefusedError(f"{refused_changes(refusals)}; only its rescues ran"
                           f"{' (one failed, above)' if code == 1 else ''}: fix the manifests, then apply")
    return code


def refused_changes(refusals: tuple) -> str:
    """What a plan refuses, named (a saved plan's refusals are not printed above the error)."""
    named = "; ".join(f"{f.store}{'/' + f.key if f.key else ''}: {f.message}" for f in refusals[:3])
    more = f"; and {len(refusals) - 3} more" if len(refusals) > 3 else ""
    return f"the plan refuses {len(refusals)} change(s) ({named}{more})"


def rescues_only(plan: Plan) -> Plan | None:
    """The part of a refused plan that still runs: its ``cancel_key_deletion`` steps (each the
    rescue of a declared key pending deletion, not destructive, and due by a date that does not
    wait), without their dependencies; None when it has none. Re-enabling the rescued keys and the
    rest wait for a plan without refusals."""
    from dataclasses import replace

    rescues = tuple(replace(step, depends_on=()) for step in plan.steps
                    if step.action.value == "cancel_key_deletion")
    return replace(plan, steps=rescues) if rescues else None


def execute_plan(request: ApplyRequest, conn: Connection, plan: Plan, desired, paths: list[str], out: Any,
                 stop: Stop, run_id: str, partial: bool = False) -> int:
    """Run a checked plan's steps, report on ``out``, return the exit code (0, 1 or 2); ``partial``:
    the steps are only part of the plan (its rescues), so success is not convergence."""
    from reconciler.apply.executor import Executor, ExecutorOptions, Redactor
    from reconciler.apply.journal import Journal
    from reconciler.apply.progress import Progress

    redactor = Redactor()
    journal = Journal(request.journal_path)
    progress = Progress(fmt=request.fmt, stream=out, journal=journal, run_id=run_id, redact=redactor,
                        now=conn.now)
    executor = Executor(conn, plan, desired.inputs, emit=progress, redactor=redactor,
                        options=ExecutorOptions(timeout_seconds=request.timeout_seconds,
                                                limiter=limiter_for(conn)))
    stop.attach(executor)  # from here on, SIGINT/SIGTERM stop it gracefully
    progress({"event": "run-start", "plan": plan.to_dict()["planDigest"], "region": plan.region,
              **({"account": plan.target["account"]} if plan.target.get("account") else {}),
              "steps": len(plan.steps), "manifests": list(paths)})
    try:
        result = executor.run()
        counts = {o: len(result.by_outcome(o)) for o in ("ok", "failed", "skipped", "deferred")}
        rerun, finish = result.rerun_after(), result.finish_after()
        progress({"event": "run-end", **counts, "rerunAfter": iso(rerun),
                  **({"finishAfter": iso(finish)} if finish and finish != rerun else {}),
                  **({"interrupted": True} if executor.stopped else {})})
    finally:
        progress.close()
        journal.close()

    if request.fmt == "text":
        print(f"\nApply: {counts['ok']} done, {counts['failed']} failed, {counts['skipped']} skipped, "
              f"{counts['deferred']} deferred.", file=out)
        for failed in result.by_outcome("failed"):
            print(printable(f"  ✗ {failed.step.id}: {redactor(failed.message)}"), file=out)
        if counts["skipped"]:
            reason = "apply was interrupted" if executor.stopped else "a step they depend on failed"
            print(printable(f"  skipped because {reason}: "
                            + ", ".join(r.step.id for r in result.by_outcome("skipped"))), file=out)
    if result.failed:
        return 1
    if result.deferred:
        if request.fmt == "text":
            message = deferred_message(result.deferred, rerun, finish)
            if is_plan_file(request.args):  # applied once: the re-run is a new plan (the live state moved on)
                message += (" A saved plan is applied once: then make a new plan and apply it (or apply the "
                            "manifests).")
            print(printable(message), file=out)
        return 2
    if request.fmt == "text":
        print("Rescued: the keys' deletion is cancelled; the rest waits for a plan without refusals." if partial
              else "Converged: the live state matches the manifests.", file=out)
    return 0


def deferred_message(deferred: list, rerun: datetime | None, finish: datetime | None) -> str:
    """What exit 2 says: when a re-run makes progress, and, when the deferred steps fall due on
    different dates, which are due first and when the last is."""
    ids = ", ".join(r.step.id for r in deferred)
    if rerun is None:
        return f"Deferred steps remain: re-run after the deferred date to finish ({ids})."
    if finish is None or finish == rerun:
        return f"Deferred steps remain: re-run after {iso(rerun)} to finish ({ids})."
    first = ", ".join(r.step.id for r in deferred if r.deferred_until == rerun)
    later = ", ".join(r.step.id for r in deferred if r.deferred_until != rerun)
    return (f"Deferred steps remain: re-run after {iso(rerun)} to continue ({first}); the rest are due "
            f"later, the last after {iso(finish)} ({later}).")
