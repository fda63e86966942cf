"""Faults: with the emulator failing a fifth of all calls (ThrottlingException, KMSInternalException)
and adding latency, or losing the responses of writes it made, the whole lifecycle converges:
create -> an update that needs a disconnect -> decommission across a clock advance. No store or
key is created twice, and nothing is deleted or scheduled for deletion that the plan did not say.

In process (planner + executor against the in-process emulator, the clock moved by waiting), one
lifecycle per seed; ``test_lifecycle_under_faults_through_the_cli`` runs it once more through the
CLI, a new process per command, with the faults set by ``reconciler sandbox fault``.
"""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from reconciler.plan.model import Action
from reconciler.sandbox import responses
from tests.reliability.checks import check_no_duplicates, check_order, check_scope
from tests.reliability.harness import (
    ACCESS_KEY_ID,
    SECRET,
    World,
    hsm_doc,
    runnable,
    world,
    xks_doc,
)

XKS_KEYS = [{"xksKeyId": "pay-k1", "alias": "alias/pay-k1", "description": "primary", "tags": {"team": "pay"}},
            {"xksKeyId": "pay-k2", "alias": "alias/pay-k2"}]
HSM_KEYS = [{"alias": "alias/vault-k1", "description": "hsm key"}, {"alias": "alias/vault-k2", "enabled": False}]


def manifests(w: World, cluster: str, *, endpoint: str = "https://pay.example.com", state: str = "present",
              description: str = "primary") -> None:
    xks_keys = [{**XKS_KEYS[0], "description": description}, XKS_KEYS[1]]
    w.write("stores.yaml", "---\n".join([
        xks_doc("pay", endpoint=endpoint, keys=xks_keys, state=state),
        hsm_doc("vault", cluster, "ca.pem", keys=HSM_KEYS),
    ]))


def unmanaged(w: World) -> tuple[str, str]:
    """A store and a key no manifest names: they must come through untouched."""
    store = w.kms.create_custom_key_store(
        CustomKeyStoreName="someone-elses", CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyConnectivity="PUBLIC_ENDPOINT", XksProxyUriEndpoint="https://other.example.com",
        XksProxyUriPath="/kms/xks/v1",
        XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET},
    )["CustomKeyStoreId"]
    key = w.kms.create_key(Description="an ordinary key")["KeyMetadata"]["KeyId"]
    return store, key


def apply_once(w: World, label: str, allowed_destroy: set[str] = frozenset()) -> tuple[object, object]:
    """Plan, check the plan, apply it; the steps that ran must all succeed (or be deferred)."""
    plan, desired, live = w.plan_and_live()
    check_scope(plan, desired.state, live)
    check_order(plan, live, w.clock.now())
    destroyed = {s.store for s in plan.steps if s.destructive}
    assert destroyed <= allowed_destroy, f"{label}: unplanned destruction in {destroyed - allowed_destroy}"
    result = w.apply(plan, desired)
    bad = [(r.step.id, r.message) for r in result.results if r.outcome in ("failed", "skipped")]
    assert not bad, f"{label}: {bad}"
    return plan, result


def converged(w: World) -> list[str]:
    plan, _ = w.plan()
    return [s.id for s in runnable(plan, w.clock.now())]


def lifecycle(w: World) -> None:
    from reconciler.sandbox.seed import create_cloudhsm_cluster, trust_anchor

    cluster = create_cloudhsm_cluster("123456789012", "us-east-1")
    (w.root / "manifests").mkdir(parents=True, exist_ok=True)
    (w.root / "manifests" / "ca.pem").write_text(trust_anchor("123456789012", "us-east-1", cluster))
    with w.calm():
        other_store, other_key = unmanaged(w)

    # 1. create: two stores, four keys, their aliases
    manifests(w, cluster)
    apply_once(w, "create")
    assert converged(w) == []
    stores = {s["CustomKeyStoreName"]: s for s in w.stores()}
    assert stores["pay"]["ConnectionState"] == "CONNECTED" and stores["vault"]["ConnectionState"] == "CONNECTED"
    keys = w.keys()
    check_no_duplicates(w.stores(), keys)
    assert len(keys) == 4, [k["KeyId"] for k in keys]
    by_store = {}
    for k in keys:
        by_store.setdefault(k["CustomKeyStoreId"], []).append(k)
    assert {len(v) for v in by_store.values()} == {2}
    vault_keys = by_store[stores["vault"]["CustomKeyStoreId"]]
    assert sorted(k["KeyState"] for k in vault_keys) == ["Disabled", "Enabled"]
    first_ids = {k["KeyId"] for k in keys}

    # 2. an endpoint change: disconnect -> update -> connect
    manifests(w, cluster, endpoint="https://pay-v2.example.com")
    plan, _ = apply_once(w, "update")
    assert [s.action for s in plan.steps] == [Action.disconnect_store, Action.update_store, Action.connect_store]
    assert converged(w) == []
    pay = next(s for s in w.stores() if s["CustomKeyStoreName"] == "pay")
    assert pay["XksProxyConfiguration"]["UriEndpoint"] == "https://pay-v2.example.com"
    assert pay["ConnectionState"] == "CONNECTED"
    assert {k["KeyId"] for k in w.keys()} == first_ids  # same keys, none added

    # 3. a declared key found scheduled for deletion is rescued; a description is updated
    rescued = next(k["KeyId"] for k in vault_keys if k["KeyState"] == "Enabled")
    with w.calm():
        w.kms.schedule_key_deletion(KeyId=rescued, PendingWindowInDays=7)
    manifests(w, cluster, endpoint="https://pay-v2.example.com", description="primary, v2")
    plan, _ = apply_once(w, "rescue")
    assert sorted(s.action.value for s in plan.steps) == ["cancel_key_deletion", "update_key", "update_key"]
    assert converged(w) == []
    states = {k["KeyId"]: k for k in w.keys()}
    assert states[rescued]["KeyState"] == "Enabled"
    assert {k["KeyId"] for k in w.keys()} == first_ids

    # 4. decommission pay: schedule its keys' deletion, disconnect, delete once they are gone
    manifests(w, cluster, endpoint="https://pay-v2.example.com", state="absent", description="primary, v2")
    plan, result = apply_once(w, "decommission", allowed_destroy={"pay"})
    assert [r.outcome for r in result.results][-1] == "deferred"
    scheduled = {s.params["keyId"] for s in plan.steps if s.action == Action.schedule_key_deletion}
    assert scheduled == {k["KeyId"] for k in by_store[stores["pay"]["CustomKeyStoreId"]]}
    for key in w.keys():
        assert (key["KeyState"] == "PendingDeletion") == (key["KeyId"] in scheduled), key
    assert converged(w) == []  # only the deferred delete_store is left
    w.clock.advance(8 * 86400)
    apply_once(w, "decommission, after the waiting period", allowed_destroy={"pay"})
    assert converged(w) == []
    final = {s["CustomKeyStoreName"]: s for s in w.stores()}
    assert set(final) == {"vault", "someone-elses"}
    assert final["someone-elses"]["CustomKeyStoreId"] == other_store
    assert {k["KeyId"] for k in w.keys()} == {k["KeyId"] for k in vault_keys}
    with w.calm():
        assert w.kms.describe_key(KeyId=other_key)["KeyMetadata"]["KeyState"] == "Enabled"
    check_no_duplicates(w.stores(), w.keys())


@pytest.fixture
def no_real_waits(monkeypatch):
    """The reader's botocore (standard mode) waits real seconds between retries; the emulator's
    faults need no real time to pass, so the in-process tests skip those waits (the retries
    themselves still happen). The CLI test below keeps them. (The executor's own backoff moves the
    emulator clock: it costs no real time.)"""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


def test_lifecycle_without_faults(tmp_path: Path):
    with world(tmp_path) as w:
        lifecycle(w)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lifecycle_with_a_fifth_of_calls_throttled_or_failing_and_latency(tmp_path: Path, seed: int,
                                                                         no_real_waits):
    with world(tmp_path, seed=seed) as w:
        w.settings.faults.throttle_rate = 0.1
        w.settings.faults.error_rate = 0.1
        w.settings.faults.latency_ms = 2
        lifecycle(w)
        stats = responses.call_stats.snapshot()
        assert sum(stats["throttled"].values()) > 3 and sum(stats["internal_errors"].values()) > 3, stats


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lifecycle_with_lost_responses_creates_nothing_twice(tmp_path: Path, seed: int, no_real_waits):
    """A fifth of the writes KMS makes answer KMSInternalException (the change is made, the
    response is lost): creates must find what they made, and every other write must accept the
    retry's answer when the live state shows the step done."""
    with world(tmp_path, seed=seed) as w:
        w.settings.faults.lost_response_rate = 0.3
        w.settings.faults.throttle_rate = 0.05
        lifecycle(w)
        stats = responses.call_stats.snapshot()
        assert sum(stats["lost_responses"].values()) >= 1, stats


class LoseFirstResponse:
    """The sandbox's fault model draws ``rng.random()`` once per successful write when
    ``lost_response_rate`` is set (and nothing else is). This stand-in rng loses the response of
    the first successful call of each write operation, once per apply (``reset()``), and no other:
    a deterministic lost response for every kind of write the executor makes."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.ids = random.Random(0)
        self.lost: list[str] = []
        self.seen: set[str] = set()
        record = responses.call_stats.record_call

        def remember(operation: str) -> None:
            self.local.operation = operation
            record(operation)

        self.remember = remember

    def reset(self) -> None:
        self.seen.clear()

    def __getattr__(self, name: str):  # choice(), getrandbits()... for ids: a seeded Random
        return getattr(self.ids, name)

    def random(self) -> float:
        operation = getattr(self.local, "operation", "")
        if operation in self.seen:
            return 0.99
        self.seen.add(operation)
        self.lost.append(operation)
        return 0.0


def test_every_kind_of_write_survives_a_lost_response(tmp_path: Path, monkeypatch, no_real_waits):
    with world(tmp_path) as w:
        lose = LoseFirstResponse()
        monkeypatch.setattr(responses.call_stats, "record_call", lose.remember)
        w.settings.rng = lose
        w.settings.faults.lost_response_rate = 0.5
        original = w.apply

        def apply(plan, desired, conn=None, create_attempts=6):
            lose.reset()
            return original(plan, desired, conn, create_attempts)

        w.apply = apply  # type: ignore[method-assign]
        lifecycle(w)
    writes = {"CreateCustomKeyStore", "CreateKey", "ConnectCustomKeyStore", "CreateAlias", "DisableKey",
              "DisconnectCustomKeyStore", "UpdateCustomKeyStore", "CancelKeyDeletion", "EnableKey",
              "UpdateKeyDescription", "ScheduleKeyDeletion", "DeleteCustomKeyStore"}
    assert writes <= set(lose.lost), writes - set(lose.lost)


def test_create_under_faults_through_the_cli(cli_process):
    """The create phase as a pipeline runs it: a new process per command with --sandbox, the reader's
    real botocore retry delays and the executor's own retries, faults injected by 'reconciler
    sandbox fault' (the whole lifecycle under faults runs in process above: real retry delays make
    it slow)."""
    from tests.e2e.helpers import xks_manifest

    cli = cli_process

    # a fifth of the calls fail; fewer of them throttled than in process: the plan's read before
    # the apply waits real seconds after each throttle (botocore's standard retries)
    assert cli("sandbox", "fault", "--throttle-rate", "0.05", "--error-rate", "0.15", "--latency-ms", "5",
               "--lost-response-rate", "0.2", "--seed", "7").code == 0
    cli.write("m/payments.yaml", xks_manifest())
    run = cli("apply", "--sandbox", "--auto-approve", "--format", "json", "m")
    assert run.code == 0, run.both
    events = [json.loads(line) for line in run.out.splitlines()]
    assert [e["event"] for e in events if e.get("step")].count("ok") == 6
    assert cli("sandbox", "fault", "--clear").code == 0
    assert cli("plan", "--sandbox", "m").code == 0  # converged
    with cli.kms() as kms:
        stores = kms.describe_custom_key_stores()["CustomKeyStores"]
        metas = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]]
    check_no_duplicates(stores, [m for m in metas if m.get("CustomKeyStoreId")])
    assert [s["CustomKeyStoreName"] for s in stores] == ["payments-xks"]
    assert sorted(m["XksKeyConfiguration"]["Id"] for m in metas if m.get("CustomKeyStoreId")) == \
        ["ext-key-0001", "ext-key-0002"]


@pytest.mark.e2e
def test_embedded_sandbox_with_quotas_and_random_throttling_converges_through_the_cli(tmp_path):
    """In the embedded sandbox a client's backoff advances the emulator clock instead of passing on
    the wall clock; the quota buckets refilled on the wall clock only, so every retry found its
    bucket still empty and a connect failed with ThrottlingException after its attempts. The
    buckets count the clock's advances too."""
    from tests.e2e.helpers import Cli, xks_manifest

    cli = Cli(tmp_path, in_process=True)
    cli.write("m/payments.yaml", xks_manifest())
    for seed in ("1",):
        assert cli("sandbox", "reset").code == 0
        assert cli("sandbox", "fault", "--quotas", "on", "--throttle-rate", "0.3", "--seed", seed).code == 0
        run = cli("apply", "--sandbox", "--auto-approve", "m")
        assert run.code == 0 and "Throttling" not in run.both, run.both
