"""What apply costs in calls (issue 15): a small fleet of the benchmark's shapes (3 stores x 4 keys,
each key with an alias and two tags), created from nothing, then decommissioned (every key
scheduled, the stores disconnected, the clock moved past the waiting period, the stores deleted).
Every operation's count is exact; DescribeCustomKeyStores is one read of every store per poll of
the store watcher, so the waits cost the same number of calls for one store as for eight.

The executor runs against the in-process emulator with the clock moved by waiting (as in the
embedded sandbox): the watcher moves it only when every store's steps wait, so the counts do not
depend on thread timing.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import boto3
import pytest

from reconciler.apply.executor import Executor, ExecutorOptions
from reconciler.aws.connection import Connection
from reconciler.live.reader import ReadOptions, read_live
from reconciler.manifest.loader import load
from reconciler.plan.build import build_desired
from reconciler.plan.model import Action, Plan
from reconciler.plan.planner import diff
from reconciler.aws.ratelimit import RateLimiter
from reconciler.sandbox import responses
from tests.conftest import XKS_ACCESS_KEY_ID, XKS_SECRET

KEYS = 4
# the emulator's connect delay is 5 s: polls 1, 2.6 and 5.16 s after the stores' Connect calls
POLLS_TO_CONNECT = 3


def _manifest(s: int, keys: int, state: str) -> str:
    lines = [f"""\
        apiVersion: reconciler/v1
        kind: KeyStore
        metadata: {{name: calls-{s}}}
        spec:
          type: EXTERNAL_KEY_STORE
          state: {state}
          deletion: {{pendingWindowDays: 7}}
          xks:
            connectivity: PUBLIC_ENDPOINT
            uriEndpoint: https://xks-{s}.example.com
            uriPath: /kms/xks/v1
            credential:
              accessKeyId: {XKS_ACCESS_KEY_ID}
              secretAccessKey: {{fromEnv: XKS_SECRET_ACCESS_KEY}}
          keys:{" []" if not keys else ""}
        """]
    for k in range(keys):
        lines.append(f"    - {{alias: alias/calls-{s}-{k}, xksKeyId: calls-{s}-{k}, "
                     f"tags: {{team: t{s}, tier: gold}}}}\n")
    return textwrap.dedent(lines[0]) + "".join(lines[1:])


def apply(sandbox, kms, tmp_path: Path, stores: int, state: str, *, write: bool = True
          ) -> tuple[Plan, dict[str, int], list]:
    """Write the manifests of stores calls-0... (unless ``write`` is false), plan (reader without
    limiter) and execute; the calls the executor made, by operation."""
    paths = []
    for s in range(stores):
        path = tmp_path / f"calls-{s}.yaml"
        if write:
            path.write_text(_manifest(s, KEYS, state))
        paths.append(str(path))
    desired = build_desired(load(paths), "us-east-1", paths)
    live = read_live(kms, "us-east-1", options=ReadOptions(limiter=RateLimiter(enabled=False)), now=sandbox.clock.now)
    steps, _ = diff(desired.state, live, sandbox.clock.now())
    plan = Plan(region="us-east-1", steps=steps, findings=(), created_at=sandbox.clock.now(),
                observed=live.to_dict(only=set(desired.state.names())))
    conn = Connection(session=boto3.Session(region_name="us-east-1"), region="us-east-1",
                      now=sandbox.clock.now, sleep=sandbox.clock.advance)
    responses.call_stats.reset()
    result = Executor(conn, plan, desired.inputs, emit=lambda e: None,
                      options=ExecutorOptions(limiter=RateLimiter(enabled=False))).run()
    bad = [(r.step.id, r.message) for r in result.results if r.outcome not in ("ok", "deferred")]
    assert not bad, bad
    return plan, responses.call_stats.snapshot()["calls"], result.results


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("XKS_SECRET_ACCESS_KEY", XKS_SECRET)


@pytest.mark.parametrize("stores", [3, 1, 8])
def test_create_and_decommission_cost_exactly_these_calls(sandbox, kms, tmp_path, secret, stores):
    sandbox.custom_key_store_quota = 10
    n = stores * KEYS

    plan, calls, _ = apply(sandbox, kms, tmp_path, stores, "present")
    assert [s.action for s in plan.steps].count(Action.create_key) == n
    # one read of every store before the creates (a store of that name may exist since the plan),
    # then the polls while they connect
    assert calls == {"CreateCustomKeyStore": stores, "ConnectCustomKeyStore": stores,
                     "DescribeCustomKeyStores": 1 + POLLS_TO_CONNECT, "CreateKey": n, "CreateAlias": n}

    # every key scheduled; each store read once (one read for all) before its Disconnect, and
    # one poll a second later finds them all DISCONNECTED (the emulator's delay is 1 s)
    _, calls, results = apply(sandbox, kms, tmp_path, stores, "absent")
    assert calls == {"ScheduleKeyDeletion": n, "DescribeCustomKeyStores": 2, "DisconnectCustomKeyStore": stores}
    assert [r.outcome for r in results if r.step.action == Action.delete_store] == ["deferred"] * stores

    sandbox.clock.advance(8 * 86400)
    _, calls, _ = apply(sandbox, kms, tmp_path, stores, "absent")
    assert calls == {"DescribeCustomKeyStores": 1, "DeleteCustomKeyStore": stores}
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_throttled_creates_are_retried_without_a_lookup(sandbox, kms, tmp_path, secret):
    """A throttle means KMS did nothing: the creates retry it as is, never scanning the region's
    keys (as they must after an error that may have had an effect)."""
    sandbox.faults.throttle_rate = 0.3
    _, calls, _ = apply(sandbox, kms, tmp_path, 3, "present")
    throttled = responses.call_stats.snapshot()["throttled"]
    assert throttled.get("CreateKey", 0) > 0
    assert calls["CreateKey"] == 12 + throttled["CreateKey"]
    assert calls["CreateCustomKeyStore"] == 3 + throttled.get("CreateCustomKeyStore", 0)
    assert "ListKeys" not in calls and "DescribeKey" not in calls


def test_a_lost_create_response_describes_only_the_keys_the_run_cannot_place(sandbox, kms, tmp_path, secret,
                                                                             monkeypatch):
    """After a lost CreateKey response the executor looks for the key it may have made: it skips the
    keys of the plan's stores (a key's store never changes) and the keys it made itself."""
    from tests.reliability.test_faults import LoseFirstResponse

    for n in range(5):  # keys outside every store: the run cannot place them
        kms.create_key(Description=f"app {n}")
    apply(sandbox, kms, tmp_path, 1, "present")  # calls-0, with 4 keys: in the next plan's observed state
    (tmp_path / "calls-1.yaml").write_text(_manifest(1, KEYS, "present"))
    lose = LoseFirstResponse()
    monkeypatch.setattr(responses.call_stats, "record_call", lose.remember)
    sandbox.rng = lose
    sandbox.faults.lost_response_rate = 0.5
    lose.seen.update({"CreateCustomKeyStore", "ConnectCustomKeyStore", "CreateAlias"})  # only a CreateKey is lost
    _, calls, _ = apply(sandbox, kms, tmp_path, 2, "present")
    assert lose.lost == ["CreateKey"]
    assert calls["ListKeys"] == 1
    assert calls["DescribeKey"] == 5 + 1  # the unrelated keys and the lost one; not calls-0's four
    assert calls["CreateKey"] == KEYS  # the lost one found, not made again


def test_a_refused_delete_describes_only_the_keys_the_run_cannot_place(sandbox, kms, tmp_path, secret, xks_store):
    """DeleteCustomKeyStore refused because the store holds a key made after the plan: the date to
    re-run after comes from the keys the run cannot place (not the plan's other stores' keys)."""
    for n in range(3):
        kms.create_key(Description=f"app {n}")
    apply(sandbox, kms, tmp_path, 1, "present")  # calls-0, 4 keys: known to the next plan
    store_id = xks_store("calls-1", connect=True, uri_endpoint="https://xks-1.example.com")
    (tmp_path / "calls-1.yaml").write_text(_manifest(1, 0, "absent"))
    real_diff = diff

    def diff_then_someone_creates_a_key(*args):
        steps = real_diff(*args)
        kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId="late")
        return steps

    import tests.perf.test_apply_calls as here

    here.diff = diff_then_someone_creates_a_key
    try:
        _, calls, results = apply(sandbox, kms, tmp_path, 2, "present", write=False)
    finally:
        here.diff = real_diff
    (delete,) = [r for r in results if r.step.action == Action.delete_store]
    assert delete.outcome == "deferred" and delete.deferred_until is None
    assert calls["DescribeKey"] == 3 + 1  # the unrelated keys and the late one; not calls-0's four
