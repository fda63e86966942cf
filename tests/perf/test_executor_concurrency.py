"""Apply runs independent stores' steps concurrently within the quotas: in a 20-store decommission
the stores' steps are in flight together, not one store after another. (How long it takes is the
apply benchmark's subject: benchmarks/apply_bench.py.)"""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import boto3

from reconciler.apply.executor import Executor, ExecutorOptions
from reconciler.aws.connection import Connection
from reconciler.live.reader import ReadOptions, read_live
from reconciler.manifest.loader import load
from reconciler.plan.build import build_desired
from reconciler.plan.planner import diff
from reconciler.aws.ratelimit import RateLimiter
from reconciler.sandbox import responses
from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS
from tests.conftest import XKS_ACCESS_KEY_ID, XKS_SECRET

LATENCY_MS = 25
# ten times KMS's quotas, so that this small test is about concurrency, not about the quota
QUOTAS = {op: q * 10 for op, q in KMS_DEFAULT_QUOTAS.items()}


def _manifest(name: str, n: int) -> str:
    return textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: KeyStore
        metadata: {{name: {name}}}
        spec:
          type: EXTERNAL_KEY_STORE
          state: absent
          deletion: {{pendingWindowDays: 7}}
          xks:
            connectivity: PUBLIC_ENDPOINT
            uriEndpoint: https://xks-{n}.example.com
            uriPath: /kms/xks/v1
            credential:
              accessKeyId: {XKS_ACCESS_KEY_ID}
              secretAccessKey: {{fromEnv: XKS_SECRET_ACCESS_KEY}}
          keys: []
        """)


def _decommission(sandbox, kms, xks_store, tmp_path: Path, names: list[str], parallel: int,
                  first: int = 0) -> tuple[int, list]:
    """Decommission the stores; the most steps that were in flight at once, and the results."""
    for n, name in enumerate(names, start=first):
        store_id = xks_store(name, connect=True, uri_endpoint=f"https://xks-{n}.example.com")
        kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId=f"{name}-key")
    paths = []
    for n, name in enumerate(names, start=first):
        path = tmp_path / f"{name}.yaml"
        path.write_text(_manifest(name, n))
        paths.append(str(path))
    desired = build_desired(load(paths), "us-east-1", paths)
    live = read_live(kms, "us-east-1", options=ReadOptions(limiter=RateLimiter(enabled=False)), now=sandbox.clock.now)
    steps, _ = diff(desired.state, live, sandbox.clock.now())
    from reconciler.plan.model import Plan

    plan = Plan(region="us-east-1", steps=steps, findings=(), created_at=sandbox.clock.now())
    sandbox.faults.latency_ms = LATENCY_MS
    sandbox.faults.quotas_enabled = True
    sandbox.faults.quota_overrides = dict(QUOTAS)
    responses.quota_buckets.reset()
    responses.call_stats.reset()
    conn = Connection(session=boto3.Session(region_name="us-east-1"), region="us-east-1",
                      now=sandbox.clock.now, sleep=lambda s: sandbox.clock.advance(s))
    options = ExecutorOptions(limiter=RateLimiter(QUOTAS), max_parallel_stores=parallel)
    lock, running, peak = threading.Lock(), set(), [0]

    def emit(event: dict) -> None:
        with lock:
            if event["event"] == "start":
                running.add(event["step"])
                peak[0] = max(peak[0], len(running))
            else:
                running.discard(event["step"])

    result = Executor(conn, plan, desired.inputs, emit=emit, options=options).run()
    sandbox.faults.latency_ms = 0
    sandbox.faults.quotas_enabled = False
    return peak[0], result.results


def test_twenty_store_decommission_runs_the_stores_concurrently(sandbox, kms, xks_store, tmp_path, monkeypatch):
    monkeypatch.setenv("XKS_SECRET_ACCESS_KEY", XKS_SECRET)
    sandbox.custom_key_store_quota = 30
    one, _ = _decommission(sandbox, kms, xks_store, tmp_path, ["solo"], ExecutorOptions().max_parallel_stores,
                           first=100)
    names = [f"s{n:02d}" for n in range(20)]
    many, results = _decommission(sandbox, kms, xks_store, tmp_path, names, ExecutorOptions().max_parallel_stores)

    outcomes = {r.step.id: r.outcome for r in results}
    assert all(o in ("ok", "deferred") for o in outcomes.values()), outcomes
    assert sum(1 for r in results if r.step.action.value == "schedule_key_deletion" and r.outcome == "ok") == 20
    assert responses.call_stats.snapshot()["throttled"] == {}
    # one store's steps run one after another; twenty stores' steps overlap (each waits for its
    # disconnection for as long as the emulated KMS takes, so all of them are in flight together)
    assert one == 1
    assert many >= 10, many
