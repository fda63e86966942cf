"""The planner's rules, on plain desired and live values (no AWS, no emulator)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from reconciler.live.model import LiveKey, LiveState, LiveStore, LiveXks
from reconciler.plan.desired import DesiredCloudHsm, DesiredKey, DesiredState, DesiredStore, DesiredXks
from reconciler.plan.model import SENSITIVE, Action, Plan
from reconciler.plan.planner import MANAGED_TAG, diff

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
ACCESS = "ABCDEFGHIJKLMNOPQRST"
XKS = DesiredXks(connectivity="PUBLIC_ENDPOINT", uri_endpoint="https://xks.example.com", uri_path="/kms/xks/v1",
                 access_key_id=ACCESS)
LIVE_XKS = LiveXks(connectivity="PUBLIC_ENDPOINT", uri_endpoint="https://xks.example.com", uri_path="/kms/xks/v1",
                   access_key_id=ACCESS)
KEYS = (DesiredKey(alias="alias/pay-1", xks_key_id="ext-1"), DesiredKey(alias="alias/pay-2", xks_key_id="ext-2"))


def store(**kw) -> DesiredStore:
    base = dict(name="pay", type="EXTERNAL_KEY_STORE", xks=XKS, keys=KEYS, pending_window_days=7)
    base.update(kw)
    return DesiredStore(**base)


def live_key(n: int, state: str = "Enabled", **kw) -> LiveKey:
    base = dict(key_id=f"k-{n}", arn=f"arn:k-{n}", store_id="cks-1", origin="EXTERNAL_KEY_STORE",
                key_state=state, enabled=state == "Enabled", xks_key_id=f"ext-{n}",
                aliases=(f"alias/pay-{n}",), tags=((MANAGED_TAG, f"ext-{n}"),))
    base.update(kw)
    return LiveKey(**base)


def live_store(state: str = "CONNECTED", keys=(), **kw) -> LiveStore:
    base = dict(id="cks-1", name="pay", type="EXTERNAL_KEY_STORE", connection_state=state, xks=LIVE_XKS,
                keys=tuple(keys))
    base.update(kw)
    return LiveStore(**base)


def live(*stores: LiveStore) -> LiveState:
    aliases = {a: k.key_id for s in stores for k in s.keys for a in k.aliases}
    return LiveState(region="us-east-1", stores={s.name: s for s in stores}, aliases=aliases)


def plan(*stores: DesiredStore, state: LiveState | None = None):
    steps, findings = diff(DesiredState(region="us-east-1", stores=stores), state or live(), NOW)
    return steps, findings


def actions(steps) -> list[str]:
    return [f"{s.action.value}:{s.key}" if s.key else s.action.value for s in steps]


def test_create_orders_store_connect_keys_aliases():
    steps, findings = plan(store())
    assert actions(steps) == ["create_store", "connect_store", "create_key:ext-1", "create_alias:alias/pay-1",
                              "create_key:ext-2", "create_alias:alias/pay-2"]
    create, connect = steps[0], steps[1]
    assert connect.depends_on == (create.id,)
    assert steps[2].depends_on == (connect.id,)
    assert steps[3].depends_on == (steps[2].id,)
    assert create.params["secretAccessKey"] == SENSITIVE
    assert not any(s.destructive for s in steps)
    assert findings == ()


def test_create_disconnected_store_creates_no_keys_and_says_why():
    steps, findings = plan(store(connection="disconnected"))
    assert actions(steps) == ["create_store"]
    assert any("disconnected" in f.message for f in findings)


def test_connected_store_in_sync_has_no_changes():
    steps, findings = plan(store(), state=live(live_store(keys=[live_key(1), live_key(2)])))
    assert steps == ()
    assert findings == ()


def test_uri_path_changes_in_place_while_connected():
    """UpdateCustomKeyStore: XksProxyUriPath may change while the store is CONNECTED."""
    want = store(xks=DesiredXks(**{**XKS.__dict__, "uri_path": "/v2/kms/xks/v1"}))
    steps, _ = plan(want, state=live(live_store(keys=[live_key(1), live_key(2)])))
    assert actions(steps) == ["update_store"]
    assert steps[0].params["changes"]["uriPath"] == {"from": "/kms/xks/v1", "to": "/v2/kms/xks/v1"}


def test_credential_rotation_sends_the_secret_in_place():
    want = store(xks=DesiredXks(**{**XKS.__dict__, "access_key_id": "ZYXWVUTSRQPONMLKJIHG"}))
    steps, _ = plan(want, state=live(live_store(keys=[live_key(1), live_key(2)])))
    assert actions(steps) == ["update_store"]
    assert steps[0].params["secretAccessKey"] == SENSITIVE


def test_endpoint_change_needs_disconnect_update_connect_and_says_keys_unavailable():
    """UpdateCustomKeyStore: XksProxyUriEndpoint changes only while DISCONNECTED."""
    want = store(xks=DesiredXks(**{**XKS.__dict__, "uri_endpoint": "https://xks2.example.com"}))
    steps, _ = plan(want, state=live(live_store(keys=[live_key(1), live_key(2)])))
    assert actions(steps) == ["disconnect_store", "update_store", "connect_store"]
    assert "unavailable" in steps[0].reason
    # the reconnect needs only the disconnect: a failed update must leave the store connected on
    # its previous settings, as the user had it (the store's chain still runs it after the update)
    assert steps[1].depends_on == (steps[0].id,) and steps[2].depends_on == (steps[0].id,)


def test_offline_change_on_disconnected_store_updates_then_connects():
    want = store(xks=DesiredXks(**{**XKS.__dict__, "uri_endpoint": "https://xks2.example.com"}))
    steps, _ = plan(want, state=live(live_store("DISCONNECTED", keys=[live_key(1, "Unavailable"), live_key(2, "Unavailable")])))
    assert actions(steps) == ["update_store", "connect_store"]


def test_type_change_is_refused_never_recreated():
    want = store(type="AWS_CLOUDHSM", xks=None, cloudhsm=DesiredCloudHsm("cluster-1a23b4cdefg", "PEM"),
                 keys=(DesiredKey(alias="alias/pay-1"),))
    steps, findings = plan(want, state=live(live_store(keys=[live_key(1)])))
    assert steps == ()
    assert [f.kind for f in findings] == ["refused"]
    assert "cannot change a store's type" in findings[0].message


def test_failed_store_is_repaired_disconnect_then_connect_with_the_fix():
    steps, _ = plan(store(), state=live(live_store("FAILED", connection_error_code="XKS_PROXY_NOT_REACHABLE",
                                                   keys=[live_key(1, "Unavailable"), live_key(2, "Unavailable")])))
    assert actions(steps) == ["disconnect_store", "connect_store"]
    assert "XKS_PROXY_NOT_REACHABLE" in steps[0].reason and "uriEndpoint" in steps[0].reason


def test_failed_with_invalid_credentials_resends_credential_before_reconnecting():
    steps, _ = plan(store(), state=live(live_store("FAILED", connection_error_code="INVALID_CREDENTIALS",
                                                   keys=[live_key(1, "Unavailable"), live_key(2, "Unavailable")])))
    assert actions(steps) == ["disconnect_store", "update_store", "connect_store"]
    assert steps[1].params["secretAccessKey"] == SENSITIVE


def test_failed_store_with_manifest_change_updates_in_the_repair():
    want = store(xks=DesiredXks(**{**XKS.__dict__, "uri_endpoint": "https://fixed.example.com"}))
    steps, _ = plan(want, state=live(live_store("FAILED", connection_error_code="XKS_PROXY_NOT_REACHABLE",
                                                keys=[live_key(1, "Unavailable"), live_key(2, "Unavailable")])))
    assert actions(steps) == ["disconnect_store", "update_store", "connect_store"]


@pytest.mark.parametrize("live_state,declared,expected", [
    ("CONNECTED", "disconnected", ["disconnect_store"]),
    ("DISCONNECTED", "connected", ["connect_store"]),
    ("DISCONNECTED", "disconnected", []),
    ("CONNECTING", "connected", ["connect_store"]),  # waits for the connection in progress
])
def test_connection_follows_the_manifest(live_state, declared, expected):
    key_state = "Enabled" if live_state == "CONNECTED" else "Unavailable"
    steps, _ = plan(store(connection=declared),
                    state=live(live_store(live_state, keys=[live_key(1, key_state), live_key(2, key_state)])))
    assert actions(steps) == expected


def test_declared_key_pending_deletion_is_rescued_and_enabled():
    date = NOW + timedelta(days=3)
    pending = live_key(2, "PendingDeletion", deletion_date=date)
    steps, _ = plan(store(), state=live(live_store(keys=[live_key(1), pending])))
    assert actions(steps) == ["cancel_key_deletion:ext-2", "update_key:ext-2"]
    assert "rescued" in steps[0].reason and "2026-12-04" in steps[0].reason
    assert steps[1].params["enabled"] is True and steps[1].depends_on == (steps[0].id,)
    assert not any(s.destructive for s in steps)


def test_unmanaged_store_and_drift_key_are_reported_not_changed():
    other = live_store(id="cks-9", name="someone-elses", keys=[live_key(9, store_id="cks-9")])
    extra = live_key(3)
    steps, findings = plan(store(), state=live(live_store(keys=[live_key(1), live_key(2), extra]), other))
    assert steps == ()
    kinds = sorted((f.kind, f.store) for f in findings)
    assert kinds == [("drift_key", "pay"), ("unmanaged_store", "someone-elses")]


def test_decommission_schedules_each_key_then_disconnects_then_deferred_delete():
    steps, _ = plan(store(state="absent"), state=live(live_store(keys=[live_key(1), live_key(2)])))
    assert actions(steps) == ["schedule_key_deletion:ext-1", "schedule_key_deletion:ext-2",
                              "disconnect_store", "delete_store"]
    delete = steps[-1]
    assert delete.deferred_until == NOW + timedelta(days=7)
    assert set(delete.depends_on) == {s.id for s in steps[:-1]}
    assert [s.destructive for s in steps] == [True, True, False, True]
    assert all(s.params["pendingWindowInDays"] == 7 for s in steps[:2])


def test_decommission_keeps_existing_deletion_dates_and_defers_to_the_latest():
    later = NOW + timedelta(days=20)
    keys = [live_key(1, "PendingDeletion", deletion_date=later), live_key(2, "Unavailable")]
    steps, _ = plan(store(state="absent"), state=live(live_store("DISCONNECTED", keys=keys)))
    assert actions(steps) == ["schedule_key_deletion:ext-2", "delete_store"]
    assert steps[-1].deferred_until == later


def test_decommission_of_empty_disconnected_store_deletes_now():
    steps, _ = plan(store(state="absent"), state=live(live_store("DISCONNECTED")))
    assert actions(steps) == ["delete_store"] and steps[0].deferred_until is None


def test_absent_store_that_does_not_exist_is_no_change():
    assert plan(store(state="absent")) == ((), ())


def test_alias_held_by_a_key_outside_the_store_is_refused():
    state = live(live_store(keys=[live_key(1)]))
    state = LiveState(region=state.region, stores=state.stores, aliases={**state.aliases, "alias/pay-2": "foreign"})
    steps, findings = plan(store(), state=state)
    assert "alias/pay-2" not in [s.key for s in steps]
    assert any(f.kind == "refused" and "alias/pay-2" in f.message for f in findings)


def test_key_description_and_tags_are_updated_in_place():
    want = store(keys=(DesiredKey(alias="alias/pay-1", xks_key_id="ext-1", description="new", tags=(("team", "a"),)),))
    have = live_key(1, tags=((MANAGED_TAG, "ext-1"), ("old", "x")))
    steps, _ = plan(want, state=live(live_store(keys=[have])))
    assert actions(steps) == ["update_key:ext-1"]
    assert steps[0].params["description"] == "new"
    assert steps[0].params["setTags"] == {"team": "a"} and steps[0].params["removeTags"] == ["old"]


def test_cloudhsm_trust_anchor_change_is_refused():
    want = DesiredStore(name="hsm", type="AWS_CLOUDHSM", cloudhsm=DesiredCloudHsm("cluster-1a23b4cdefg", "NEW"))
    have = LiveStore(id="cks-2", name="hsm", type="AWS_CLOUDHSM", connection_state="CONNECTED",
                     cloudhsm_cluster_id="cluster-1a23b4cdefg", trust_anchor_certificate="OLD")
    steps, findings = plan(want, state=live(have))
    assert steps == () and findings[0].kind == "refused"


def test_plans_are_deterministic_bytes():
    state = live(live_store(keys=[live_key(1), live_key(2)]), live_store(id="cks-3", name="zzz"))
    wants = (store(state="absent"), store(name="new"))
    first = Plan(region="us-east-1", steps=plan(*wants, state=state)[0], created_at=NOW).to_json()
    second = Plan(region="us-east-1", steps=plan(*reversed(wants), state=state)[0], created_at=NOW).to_json()
    assert first == second


def test_destructive_steps_only_for_absent_stores():
    state = live(live_store(keys=[live_key(1), live_key(2), live_key(3)]))
    for want in (store(), store(connection="disconnected"), store(keys=())):
        steps, _ = plan(want, state=state)
        assert not any(s.action in (Action.schedule_key_deletion, Action.delete_store) for s in steps)
