"""Properties of plan and apply over generated manifests x generated live states in the emulator.

(a) a plan never destroys in a store that is not ``state: absent``, and never touches a store no
    manifest names;
(b) apply, then plan again: no changes, or only deferred steps;
(c) every plan's order is legal for KMS (see :func:`tests.reliability.checks.check_order`);
(d) plans are deterministic: the same inputs give the same bytes.

Each example builds its live state in a fresh emulator with a frozen clock and plans (and
applies) in process. RECONCILER_PROPERTY_EXAMPLES sets the number of examples (default 200).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings

from reconciler.live.model import LiveState
from reconciler.plan.desired import DesiredState
from reconciler.plan.planner import diff
from tests.reliability.checks import check_no_duplicates, check_order, check_scope
from tests.reliability.harness import property_examples, runnable, world
from tests.reliability.worlds import build, worlds

PROPERTY = settings(max_examples=property_examples(), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Scratch:
    """A scratch directory per example (pytest's tmp_path is per test, not per example)."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="reconciler-prop-"))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _has_manifests(spec) -> bool:
    return any(manifest is not None for _, manifest in spec["stores"].values())


@PROPERTY
@given(worlds)
def test_plans_are_scoped_legal_and_deterministic(spec):
    if not _has_manifests(spec):
        return
    with Scratch() as root, world(root) as w:
        build(w, spec)
        plan, desired, live = w.plan_and_live()
        event(f"{len(plan.steps)} steps" if len(plan.steps) < 6 else ">= 6 steps")
        if plan.refusals:
            event("refusals")
        # (a)
        check_scope(plan, desired.state, live)
        # (c)
        check_order(plan, live, w.clock.now())
        # (d) the same manifests and the same live state, read again: the same bytes
        again, _ = w.plan()
        assert again.to_json() == plan.to_json()
        # ... and neither the order of the manifests nor the order the reader found stores in matters
        shuffled = DesiredState(region=desired.state.region, stores=tuple(reversed(desired.state.stores)))
        reordered = LiveState(region=live.region, stores=dict(reversed(list(live.stores.items()))),
                              aliases=dict(reversed(list(live.aliases.items()))), read_at=live.read_at)
        steps, findings = diff(shuffled, reordered, plan.created_at)
        assert [s.to_dict() for s in steps] == [s.to_dict() for s in plan.steps]
        assert [f.to_dict() for f in findings] == [f.to_dict() for f in plan.findings]


@PROPERTY
@given(worlds)
def test_apply_then_plan_has_nothing_left_but_deferred_steps(spec):
    if not _has_manifests(spec):
        return
    with Scratch() as root, world(root) as w:
        build(w, spec)
        plan, desired = w.plan()
        if plan.refusals:
            event("refused: apply does nothing")
            return
        before = {k["KeyId"]: k for k in w.keys()}
        stores_before = {s["CustomKeyStoreName"] for s in w.stores()}
        result = w.apply(plan, desired)
        failures = [(r.step.id, r.message) for r in result.results if r.outcome in ("failed", "skipped")]
        assert not failures, failures
        # (b)
        after, _, live = w.plan_and_live()
        left = runnable(after, w.clock.now())
        assert not left, [s.id for s in left]
        event("deferred steps remain" if after.steps else "converged")
        # and the second plan is as scoped and legal as the first
        check_scope(after, desired.state, live)
        check_order(after, live, w.clock.now())
        # nothing duplicated, nothing destroyed that the plan did not say
        stores, keys = w.stores(), w.keys()
        check_no_duplicates(stores, keys)
        destroyed_keys = {s.params["keyId"] for s in plan.steps if s.action.value == "schedule_key_deletion"}
        for key in keys:
            old = before.get(key["KeyId"])
            if key["KeyState"] == "PendingDeletion" and (old is None or old["KeyState"] != "PendingDeletion"):
                assert key["KeyId"] in destroyed_keys, f"{key['KeyId']} scheduled for deletion unplanned"
        deleted = stores_before - {s["CustomKeyStoreName"] for s in stores}
        planned = {s.store for s in plan.steps if s.action.value == "delete_store"}
        assert deleted <= planned, deleted - planned


# -- what the properties found, kept as plain examples ----------------------------------------------

def test_a_key_hidden_by_a_disconnected_store_gets_its_declared_state_when_it_reconnects(tmp_path):
    """KMS reports a key of a disconnected store as Unavailable, hiding whether it is enabled:
    connect_store sets the declared state once it is visible, so one apply converges."""
    from tests.reliability.harness import ACCESS_KEY_ID, SECRET, xks_doc

    with world(tmp_path) as w:
        store = w.kms.create_custom_key_store(
            CustomKeyStoreName="pay", CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="PUBLIC_ENDPOINT",
            XksProxyUriEndpoint="https://pay.example.com", XksProxyUriPath="/kms/xks/v1",
            XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET},
        )["CustomKeyStoreId"]
        w.kms.connect_custom_key_store(CustomKeyStoreId=store)
        w.clock.advance(w.settings.connect_delay_seconds)
        enabled = w.kms.create_key(CustomKeyStoreId=store, Origin="EXTERNAL_KEY_STORE", XksKeyId="pay-1")
        disabled = w.kms.create_key(CustomKeyStoreId=store, Origin="EXTERNAL_KEY_STORE", XksKeyId="pay-2")
        w.kms.disable_key(KeyId=disabled["KeyMetadata"]["KeyId"])
        w.kms.disconnect_custom_key_store(CustomKeyStoreId=store)
        w.clock.advance(w.settings.disconnect_delay_seconds)
        w.write("stores.yaml", xks_doc("pay", keys=[{"xksKeyId": "pay-1", "enabled": False},
                                                    {"xksKeyId": "pay-2", "enabled": True}]))
        plan, desired = w.plan()
        assert [s.action.value for s in plan.steps] == ["connect_store"]
        assert plan.steps[0].params["keysEnabled"] == {enabled["KeyMetadata"]["KeyId"]: False,
                                                       disabled["KeyMetadata"]["KeyId"]: True}
        (result,) = w.apply(plan, desired).results
        assert result.outcome == "ok" and "disabled" in result.message and "enabled" in result.message
        assert w.plan()[0].steps == ()
        states = {k["XksKeyConfiguration"]["Id"]: k["KeyState"] for k in w.keys()}
        assert states == {"pay-1": "Disabled", "pay-2": "Enabled"}


def test_an_alias_of_another_key_is_refused_also_in_an_account_without_stores(tmp_path):
    """The reader returned no aliases when the account had no custom key store, so the plan
    created a store and its key and then failed on CreateAlias; it must refuse up front."""
    from tests.reliability.harness import xks_doc

    with world(tmp_path) as w:
        other = w.kms.create_key(Description="an ordinary key")["KeyMetadata"]["KeyId"]
        w.kms.create_alias(AliasName="alias/pay-1", TargetKeyId=other)
        w.write("stores.yaml", xks_doc("pay", keys=[{"xksKeyId": "pay-1", "alias": "alias/pay-1"}]))
        plan, _ = w.plan()
        assert [f.kind for f in plan.refusals] == ["refused"]
        assert "alias/pay-1 already names key " + other in plan.refusals[0].message
