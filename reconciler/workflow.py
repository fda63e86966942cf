"""What the commands do, in order: load manifests, read live state, plan, check, execute.

The CLI parses flags and picks exit codes; this module strings the pure parts (manifests,
planner, renderers) together with the parts that talk to AWS (reader, executor).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from reconciler import __version__
from reconciler.aws import Connection, Target, connect, env_region
from reconciler.display import printable
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


def resolve_region(target: Target, loaded) -> str:
    from reconciler.regions import check_region

    if target.region:
        check_region(target.region, "--region")
        return target.region
    if env_region():
        check_region(env_region(), "AWS_REGION" if os.environ.get("AWS_REGION") else "AWS_DEFAULT_REGION")
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

def build_plan(desired: Desired, live, now: datetime, paths: list[str],
               target: dict[str, Any] | None = None) -> Plan:
    steps, findings = diff(desired.state, live, now)
    managed = sorted(desired.state.names())
    return Plan(
        region=desired.state.region, steps=steps, findings=findings, created_at=now,
        tool_version=__version__, manifests_digest=desired.digest,
        live_digest=live.digest(only=set(managed)), manifest_paths=tuple(paths),
        managed_stores=tuple(managed), observed=live.to_dict(only=set(managed)), target=target or {},
    )


def read_live_state(conn: Connection, desired: Desired | None = None):
    # issue 6 (performance): the origin cache and, given the desired state, an alias index
    # restricted to what the planner needs; see reconciler/live/reader.py read_live_cli
    from reconciler.live.reader import read_live_cli

    return read_live_cli(conn.kms, conn.region, now=conn.now,
                         desired=desired.state if desired is not None else None)


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
        live = read_live_state(conn, desired)
        return PlanResult(build_plan(desired, live, conn.now(), paths, conn.identity()), desired)


MAX_PLAN_FILE_BYTES = 256 * 1024 * 1024  # a plan of 50,000 keys is a few tens of MB


def save_plan(plan: Plan, path: str) -> None:
    """Write the plan file atomically (a temporary file beside it, then a rename)."""
    target = Path(path)
    tmp = target.with_suffix(target.suffix + ".tmp")
    try:
        if target.exists() and not target.is_file():
            raise IsADirectoryError(21, "not a regular file")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(plan.to_json(), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise UserError(f"cannot write the plan to {path} ({exc.strerror or exc}); choose another --out path, "
                        "e.g. plans/plan.json") from None


def load_plan_file(path: str) -> Plan:
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # before open: opening a FIFO would block
            raise UserError(f"{path} is not a plan file (not a regular file)")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_PLAN_FILE_BYTES + 1)
        if len(raw) > MAX_PLAN_FILE_BYTES:
            raise RefusedError(f"{path}: larger than {MAX_PLAN_FILE_BYTES // (1024 * 1024)} MiB, so not a plan file "
                               "reconciler wrote; make a new plan")
        text = raw.decode("utf-8")
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
    # DynamoDB lock table (Terraform S3 backend convention); None: no table (--sandbox always
    # locks with its local lock file)
    lock_table: str | None = None
    lock_timeout_seconds: float = 0.0
    # SIGINT/SIGTERM: finish the steps in flight, start no other, release the lock (main thread only)
    handle_signals: bool = False


def is_plan_file(args: list[str]) -> bool:
    """One ``.json`` argument is a plan file (one that does not exist: "no such plan file"), unless
    it is a directory of manifests."""
    if len(args) != 1 or not args[0].endswith(".json"):
        return False
    return not Path(args[0]).is_dir()


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


def limiter_for(conn: Connection):
    """The executor's rate limiter, paced on the connection's clock: wall time against AWS; in the
    embedded sandbox the emulator's clock, where waiting advances virtual time (a connection
    that takes minutes polls in milliseconds there, and must not be paced in real seconds)."""
    from reconciler.ratelimit import RateLimiter

    if conn.sandbox is None:
        return RateLimiter()
    return RateLimiter(clock=lambda: conn.now().timestamp(), sleep=conn.sleep)


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


def check_destroy(plan: Plan, allow_destroy: bool) -> None:
    destructive = [s for s in plan.steps if s.destructive]
    if destructive and not allow_destroy:
        listing = "\n".join(f"  - {s.id}" for s in destructive)
        raise RefusedError(f"the plan has {len(destructive)} destructive step(s) and --allow-destroy was not "
                           f"given; nothing was changed:\n{listing}\nReview them (deleting a key in a custom "
                           "key store is irreversible once its waiting period ends), then re-run with --allow-destroy")


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


def check_saved_steps(plan: Plan, plan_path: str, desired: Desired, live) -> None:
    """A saved plan's steps must be exactly what the planner makes from its (unchanged) manifests and
    (unchanged) live state at its creation time: the planner is deterministic, so anything else
    was edited into the file (its digest is a checksum, not a signature)."""
    from datetime import timedelta

    saved = [s.to_dict() for s in plan.steps]
    created = plan.created_at or datetime.now().astimezone()
    # the file keeps whole seconds: the plan was made at some instant of that second, and a date
    # derived from it (now + the deletion window) was rounded up from there
    candidates = (created, created + timedelta(microseconds=999_999))
    if not any([s.to_dict() for s in diff(desired.state, live, now)[0]] == saved for now in candidates):
        raise RefusedError(f"{plan_path}: its steps are not the ones its manifests and the live state give: the "
                           "file was edited, made by another version of reconciler, or an alias outside its "
                           "stores changed; nothing was changed. Make a new plan and review it")


@contextmanager
def apply_lock(request: ApplyRequest, conn: Connection, run_id: str) -> Iterator[Any]:
    """Hold the apply lock for the account and region (see :mod:`reconciler.apply.lock`)."""
    from reconciler.apply.lock import DynamoDBLock, FileLock, LockInfo, held, lock_id, sandbox_lock_path
    from reconciler.aws import client_config

    if conn.sandbox is not None:
        backend: Any = FileLock(sandbox_lock_path(conn.sandbox.directory, conn.region))
        path = backend.name
    elif request.lock_table:
        client = conn.session.client("dynamodb", region_name=conn.region, config=client_config())
        path = lock_id(conn.account_id(), conn.region)
        backend = DynamoDBLock(client, request.lock_table, path, profile=request.target.profile)
    else:
        yield None
        return

    def waiting(holder: LockInfo) -> None:
        print(f"Waiting up to {request.lock_timeout_seconds:g}s for the lock on {backend.name}, held by "
              f"{holder.describe()}...", file=sys.stderr, flush=True)

    with held(backend, LockInfo.for_this_process(run_id, path), timeout_seconds=request.lock_timeout_seconds,
              on_wait=waiting) as info:
        yield info


def force_unlock(table: str, run_id: str, *, region: str | None, profile: str | None):
    """``reconciler force-unlock``: delete the lock item of ``run_id`` (only that run's)."""
    import boto3

    from reconciler.apply.lock import DynamoDBLock, lock_id
    from reconciler.aws import client_config

    region = region or env_region()
    if not region:
        raise UserError("no AWS region: pass --region (the region of the apply whose lock this is) or set AWS_REGION")
    from reconciler.regions import check_region

    check_region(region, "--region")
    session = boto3.Session(profile_name=profile, region_name=region)
    account = session.client("sts", region_name=region).get_caller_identity()["Account"]
    client = session.client("dynamodb", region_name=region, config=client_config())
    return DynamoDBLock(client, table, lock_id(account, region)).force_unlock(run_id)


class _Stop:
    """What SIGINT/SIGTERM asked of an apply: stop the executor gracefully (the steps in flight
    finish, no other starts). The handler never raises: an exception raised by a signal handler
    can land in code that cannot propagate it (a finalizer, a callback) and be swallowed, and the
    apply would go on as if nothing had happened. Before the executor exists, the request is
    remembered and :meth:`check` refuses to start any step."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.executor: Any = None

    def request(self, name: str) -> None:
        self.signal = name
        if self.executor is not None:
            self.executor.stop()

    def attach(self, executor: Any) -> None:
        self.executor = executor
        if self.signal is not None:
            executor.stop()

    def check(self) -> None:
        if self.signal is not None:
            raise RefusedError(f"apply was interrupted ({self.signal}) before any step started; nothing was changed")


@contextmanager
def _signals_stop(stop: _Stop, enabled: bool) -> Iterator[None]:
    """While the body runs, SIGINT/SIGTERM stop the apply gracefully (a second one is not caught)."""
    import signal
    import threading

    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum, _frame) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
        name = signal.Signals(signum).name
        doing = "finishing the steps in flight, starting no other" if stop.executor is not None else \
            "starting no step"
        print(f"\nReceived {name}: {doing} (send it again to stop at once).", file=sys.stderr, flush=True)
        stop.request(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


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
    from reconciler.apply.executor import Executor, ExecutorOptions, Redactor
    from reconciler.apply.journal import Journal, check_journal_path
    from reconciler.apply.progress import Progress

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
        target = request.target

    out = sys.stdout
    run_id = uuid.uuid4().hex[:12]
    stop = _Stop()
    with connect(target, desired.state.region) as conn, apply_lock(request, conn, run_id) as lock, \
            _signals_stop(stop, request.handle_signals):
        _note_interrupted_run(request.journal_path, locked=lock is not None)
        if saved:
            check_target(saved_plan, plan_path, conn.identity())
        live = read_live_state(conn, desired)
        if saved:
            now_digest = live.digest(only=set(saved_plan.managed_stores))
            if now_digest != saved_plan.live_digest:
                changed = describe_drift(saved_plan.observed, live.to_dict(only=set(saved_plan.managed_stores)))
                raise StalePlanError(f"the live state changed since {plan_path} was made; nothing was changed. "
                                     f"What changed:\n{changed}\nMake a new plan and review it")
            check_saved_steps(saved_plan, plan_path, desired, live)
            plan = saved_plan
        else:
            plan = build_plan(desired, live, conn.now(), paths, conn.identity())
            if request.fmt == "text":
                print_plan(plan, "text")
        if plan.refusals:
            raise RefusedError("the plan refuses some changes (listed above); fix the manifests, then apply")
        if not plan.steps:
            if request.fmt == "text" and saved:
                print("No changes. The live state matches the manifests.", file=out)
            return 0
        check_plan_invariants(plan, desired)
        check_destroy(plan, request.allow_destroy)
        if not saved and not request.auto_approve:
            if not request.stdin_isatty():
                raise RefusedError("apply needs a confirmation, and there is no terminal to ask on: review the "
                                   "plan, then re-run with --auto-approve (or apply a saved plan file)")
            if not confirm("Apply these changes?"):
                print("Apply cancelled; nothing was changed.", file=out)
                return 1
            # a confirmation can take minutes: refuse if the live state moved meanwhile
            again = read_live_state(conn, desired)
            if again.digest(only=set(plan.managed_stores)) != plan.live_digest:
                changed = describe_drift(plan.observed, again.to_dict(only=set(plan.managed_stores)))
                raise StalePlanError("the live state changed while the plan waited for confirmation; nothing "
                                     f"was changed. What changed:\n{changed}\nRun apply again")
        check_account(conn, desired, plan)
        preflight_secrets(plan, desired)
        stop.check()

        redactor = Redactor()
        journal = Journal(request.journal_path)
        progress = Progress(fmt=request.fmt, stream=out, journal=journal, run_id=run_id, redact=redactor,
                            now=conn.now)
        executor = Executor(conn, plan, desired.inputs, emit=progress, redactor=redactor,
                            options=ExecutorOptions(timeout_seconds=request.timeout_seconds,
                                                    limiter=limiter_for(conn)))
        stop.attach(executor)  # from here on, SIGINT/SIGTERM stop it gracefully
        progress({"event": "run-start", "plan": plan.to_dict()["planDigest"], "region": plan.region,
                  "steps": len(plan.steps), "manifests": list(paths)})
        try:
            result = executor.run()
            counts = {o: len(result.by_outcome(o)) for o in ("ok", "failed", "skipped", "deferred")}
            rerun = result.rerun_after()
            progress({"event": "run-end", **counts, "rerunAfter": iso(rerun),
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
            when = iso(rerun) if rerun else "the deferred date"
            print(printable(f"Deferred steps remain: re-run after {when} to finish "
                            f"({', '.join(r.step.id for r in result.deferred)})."), file=out)
        return 2
    if request.fmt == "text":
        print("Converged: the live state matches the manifests.", file=out)
    return 0
