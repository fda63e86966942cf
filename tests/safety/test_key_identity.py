"""Which live key a declared key means (README, safety model): the key holding the alias is the
declared CloudHSM key; the XksKeyId identifies an XKS key; the tool's managed-key tag only finishes
an interrupted create, and never picks between candidates or rescues a key nothing names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from reconciler.plan.desired import DesiredCloudHsm, DesiredKey, DesiredStore
from reconciler.plan.matching import MANAGED_TAG
from reconciler.plan.model import Action
from tests.plan.test_planner import NOW, actions, live, live_key, live_store, plan
from tests.reliability.harness import REGION, hsm_doc, world

HSM = DesiredCloudHsm(cluster_id="cluster-jxhlf7644ne", trust_anchor_certificate=None)


def hsm_store(*aliases: str, **kw) -> DesiredStore:
    base = dict(name="pay", type="AWS_CLOUDHSM", cloudhsm=HSM, pending_window_days=7,
                keys=tuple(DesiredKey(alias=a) for a in aliases))
    base.update(kw)
    return DesiredStore(**base)


def hsm_key(n: int, state: str = "Enabled", aliases=(), tag: str | None = None, **kw):
    return live_key(n, state, origin="AWS_CLOUDHSM", xks_key_id=None, aliases=tuple(aliases),
                    tags=((MANAGED_TAG, tag),) if tag else (), **kw)


def hsm_live(*keys):
    return live(live_store(keys=keys, type="AWS_CLOUDHSM", xks=None, cloudhsm_cluster_id=HSM.cluster_id))


def test_rotated_cloudhsm_key_the_alias_holder_is_the_declared_key_whatever_the_key_id_order():
    """A manual rotation: a new key holds alias/app, the old one (same managed tag) is pending
    deletion. Whichever key id sorts first, nothing is rescued, re-enabled or moved."""
    when = NOW + timedelta(days=5)
    for old, new in ((1, 2), (2, 1)):
        state = hsm_live(hsm_key(old, "PendingDeletion", tag="alias/app", deletion_date=when),
                         hsm_key(new, aliases=("alias/app",), tag="alias/app"))
        steps, findings = plan(hsm_store("alias/app"), state=state)
        assert steps == (), actions(steps)
        drift = [f for f in findings if f.kind == "drift_key"]
        assert len(drift) == 1 and f"k-{old}" in drift[0].message
        assert "old key of a rotation" in drift[0].message


def test_rotation_without_the_tag_on_the_new_key_also_keeps_the_holder():
    state = hsm_live(hsm_key(1, "PendingDeletion", tag="alias/app", deletion_date=NOW + timedelta(days=5)),
                     hsm_key(2, aliases=("alias/app",)))
    steps, _ = plan(hsm_store("alias/app"), state=state)
    assert steps == ()


def test_pending_key_that_holds_the_alias_is_rescued():
    """The rescue still works for the key the manifest names: it holds the alias."""
    state = hsm_live(hsm_key(1, "PendingDeletion", aliases=("alias/app",), tag="alias/app",
                             deletion_date=NOW + timedelta(days=5)))
    steps, _ = plan(hsm_store("alias/app"), state=state)
    assert [s.action for s in steps] == [Action.cancel_key_deletion, Action.update_key]


def test_interrupted_create_is_finished_through_the_tag():
    """CreateKey done, CreateAlias not: the one tagged key gets its alias (no second key)."""
    steps, findings = plan(hsm_store("alias/app"), state=hsm_live(hsm_key(1, tag="alias/app")))
    assert actions(steps) == ["create_alias:alias/app"]
    assert steps[0].params["keyId"] == "k-1" and not steps[0].params["update"]
    assert findings == ()


def test_tagged_key_pending_deletion_without_the_alias_is_refused_not_rescued():
    state = hsm_live(hsm_key(1, "PendingDeletion", tag="alias/app", deletion_date=NOW + timedelta(days=5)))
    steps, findings = plan(hsm_store("alias/app"), state=state)
    assert steps == ()
    refused = [f for f in findings if f.kind == "refused"]
    assert len(refused) == 1 and "does not guess" in refused[0].message
    assert "aws kms create-alias --alias-name alias/app" in refused[0].message
    # KMS refuses an alias for a key pending deletion (key states table): the fix cancels it first
    assert refused[0].message.index("aws kms cancel-key-deletion") < refused[0].message.index("create-alias")


def test_the_rescue_of_a_pending_key_that_two_declarations_name_is_by_hand_not_declare_it_again():
    """K holds alias/app and alias/reports, both declared, and is pending deletion. Both are refused,
    so the plan rescues nothing; the rescue window must not advise declaring what is declared (a
    no-op while the date runs out): it gives the cancel-key-deletion command."""
    from reconciler.plan.desired import DesiredState
    from reconciler.plan.rescue import schedules

    store = hsm_store("alias/app", "alias/reports", source="m/hsm.yaml:1:1")
    state = hsm_live(hsm_key(1, "PendingDeletion", aliases=("alias/app", "alias/reports"),
                             deletion_date=NOW + timedelta(days=5)))
    steps, findings = plan(store, state=state)
    assert steps == () and len([f for f in findings if f.kind == "refused"]) == 2
    [entry] = schedules(DesiredState(region=REGION, stores=(store,)), state, steps, NOW)
    [key] = entry["keys"]
    assert not key["rescuedByThisPlan"]
    assert key["rescue"].startswith("aws kms cancel-key-deletion --key-id k-1")
    assert "declares alias: alias/app in m/hsm.yaml already" in key["rescue"]


def test_one_key_holding_the_aliases_of_two_declared_keys_is_refused_for_both_never_rewritten():
    """alias/reports moved by hand onto the key of alias/app: matching that key to both
    declarations would make each plan rewrite it to the other's settings, forever. Both refused;
    the other key is left alone; no step."""
    reports = DesiredKey(alias="alias/reports", description="reports", enabled=False)
    store = hsm_store("alias/app", keys=(DesiredKey(alias="alias/app", description="app"), reports))
    state = hsm_live(hsm_key(1, aliases=("alias/app", "alias/reports"), tag="alias/app", description="app"),
                     hsm_key(2, "Disabled", tag="alias/reports", description="reports"))
    steps, findings = plan(store, state=state)
    assert steps == (), actions(steps)
    refused = sorted(f.key for f in findings if f.kind == "refused")
    assert refused == ["alias/app", "alias/reports"]
    assert all("held by one key, k-1" in f.message and "aws kms update-alias" in f.message
               for f in findings if f.kind == "refused")


def test_duplicates_from_concurrent_applies_are_drift_never_adopted():
    """Item 13: two applies without a lock made two tagged keys; the alias holder is the declared
    key, the duplicate is reported, and no alias moves to it."""
    for holder, dup in ((1, 2), (2, 1)):
        state = hsm_live(hsm_key(holder, aliases=("alias/app",), tag="alias/app"), hsm_key(dup, tag="alias/app"))
        steps, findings = plan(hsm_store("alias/app"), state=state)
        assert steps == ()
        drift = [f for f in findings if f.kind == "drift_key"]
        assert len(drift) == 1 and f"k-{dup}" in drift[0].message and "duplicate" in drift[0].message


def test_two_tagged_keys_and_no_alias_holder_are_refused():
    state = hsm_live(hsm_key(1, tag="alias/app"), hsm_key(2, tag="alias/app"))
    steps, findings = plan(hsm_store("alias/app"), state=state)
    assert steps == ()
    assert [f.kind for f in findings if f.kind == "refused"] == ["refused"]


def test_cloudhsm_rotation_through_the_tool_then_by_hand_is_not_reverted(tmp_path: Path):
    """End to end on the emulator: the tool creates the store and alias/app; a person rotates the
    usual way; the next plan changes nothing, for either key-id order of the two keys."""
    from reconciler.sandbox.seed import create_cloudhsm_cluster, trust_anchor

    for attempt in range(4):  # key ids are random: several rotations cover both orders
        root = tmp_path / str(attempt)
        with world(root) as w:
            cluster = create_cloudhsm_cluster("123456789012", REGION)
            w.write("ca.pem", trust_anchor("123456789012", REGION, cluster))
            w.write("hsm.yaml", hsm_doc("records", cluster, "ca.pem", keys=[{"alias": "alias/app"}]))
            results = w.converge()
            assert results and not results[0].failed
            store_id = w.stores()[0]["CustomKeyStoreId"]
            old = w.kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"]
            new = w.kms.create_key(CustomKeyStoreId=store_id, Origin="AWS_CLOUDHSM")["KeyMetadata"]["KeyId"]
            w.kms.tag_resource(KeyId=new, Tags=[{"TagKey": MANAGED_TAG, "TagValue": "alias/app"}])
            w.kms.update_alias(AliasName="alias/app", TargetKeyId=new)
            w.kms.schedule_key_deletion(KeyId=old, PendingWindowInDays=7)
            plan_, _ = w.plan()
            assert plan_.steps == (), [s.id for s in plan_.steps]
            assert any(f.kind == "drift_key" and old in f.message for f in plan_.findings)
            assert w.kms.describe_key(KeyId=old)["KeyMetadata"]["KeyState"] == "PendingDeletion"
