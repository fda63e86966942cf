"""A decommission names exactly what it destroys; a failed offline update leaves the store as the
user had it; a deferred delete waits for the keys' real DeletionDate."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from reconciler.live.model import aware_utc
from reconciler.plan.desired import DesiredStore
from reconciler.plan.model import ceil_seconds
from tests.plan.test_planner import live, live_key, live_store, plan
from tests.reliability.harness import ACCOUNT, REGION, hsm_doc, world, xks_doc
from tests.e2e.helpers import cli  # noqa: F401  (fixture)
from tests.safety.test_key_identity import HSM, hsm_key, hsm_live


def test_absent_manifest_of_the_other_type_is_refused_and_destroys_nothing():
    """Item 2: state absent + EXTERNAL_KEY_STORE, while the live store of that name is CloudHSM."""
    want = DesiredStore(name="pay", type="EXTERNAL_KEY_STORE", state="absent", source="m.yaml:1")
    steps, findings = plan(want, state=hsm_live(hsm_key(1, aliases=("alias/app",))))
    assert steps == ()
    refused = [f for f in findings if f.kind == "refused"]
    assert len(refused) == 1
    assert "AWS_CLOUDHSM" in refused[0].message and "must name exactly what it destroys" in refused[0].message


def test_absent_manifest_whose_cluster_differs_is_refused():
    want = DesiredStore(name="pay", type="AWS_CLOUDHSM", state="absent",
                        identity=(("cloudHsm.clusterId", "cluster-aaaaaaaaaaa"),))
    steps, findings = plan(want, state=hsm_live(hsm_key(1, aliases=("alias/app",))))
    assert steps == () and "cluster-aaaaaaaaaaa" in findings[0].message and HSM.cluster_id in findings[0].message


def test_absent_manifest_of_the_right_type_and_settings_decommissions():
    want = DesiredStore(name="pay", type="AWS_CLOUDHSM", state="absent",
                        identity=(("cloudHsm.clusterId", HSM.cluster_id),))
    steps, _ = plan(want, state=hsm_live(hsm_key(1, aliases=("alias/app",))))
    assert [s.action.value for s in steps] == ["schedule_key_deletion", "disconnect_store", "delete_store"]


def test_absent_xks_manifest_with_another_endpoint_is_refused():
    want = DesiredStore(name="pay", type="EXTERNAL_KEY_STORE", state="absent",
                        identity=(("xks.uriEndpoint", "https://elsewhere.example.com"),))
    steps, findings = plan(want, state=live(live_store(keys=[live_key(1)])))
    assert steps == () and findings[0].kind == "refused"


def test_wrong_type_decommission_in_the_emulator_leaves_key_and_connection(tmp_path: Path):
    from reconciler.sandbox.seed import create_cloudhsm_cluster, trust_anchor

    with world(tmp_path) as w:
        cluster = create_cloudhsm_cluster(ACCOUNT, REGION)
        w.write("ca.pem", trust_anchor(ACCOUNT, REGION, cluster))
        w.write("hsm.yaml", hsm_doc("records", cluster, "ca.pem", keys=[{"alias": "alias/app"}]))
        assert not w.converge()[0].failed
        w.clear_manifests()
        w.write("gone.yaml", "apiVersion: reconciler/v1\nkind: KeyStore\nmetadata: {name: records}\n"
                             "spec: {type: EXTERNAL_KEY_STORE, state: absent}\n")
        plan_, _ = w.plan()
        assert plan_.steps == () and plan_.refusals
        assert w.stores()[0]["ConnectionState"] == "CONNECTED"
        assert [k["KeyState"] for k in w.keys()] == ["Enabled"]


def test_failed_offline_update_reconnects_the_store_on_its_previous_settings(tmp_path: Path):
    """Item 3: uriEndpoint change on a CONNECTED store; the update fails (the proxy is
    unreachable); the store ends CONNECTED on its old endpoint, its keys usable, and the
    failure is reported."""
    with world(tmp_path) as w:
        w.write("pay.yaml", xks_doc("pay", keys=[{"xksKeyId": "ext-1", "alias": "alias/pay-1"}]))
        assert not w.converge()[0].failed
        w.write("pay.yaml", xks_doc("pay", endpoint="https://moved.example.com",
                                    keys=[{"xksKeyId": "ext-1", "alias": "alias/pay-1"}]))
        w.settings.faults.proxy_errors["pay"] = "XksProxyUriUnreachableException"
        plan_, desired = w.plan()
        assert [s.action.value for s in plan_.steps] == ["disconnect_store", "update_store", "connect_store"]
        result = w.apply(plan_, desired)
        outcomes = {r.step.action.value: r for r in result.results}
        assert outcomes["update_store"].outcome == "failed"
        assert "XksProxyUriUnreachableException" in outcomes["update_store"].message
        assert outcomes["connect_store"].outcome == "ok"
        assert "previous settings" in outcomes["connect_store"].message
        assert result.failed  # the run still reports the failure (exit 1)
        store = w.stores()[0]
        assert store["ConnectionState"] == "CONNECTED"
        assert store["XksProxyConfiguration"]["UriEndpoint"] == "https://pay.example.com"
        assert [k["KeyState"] for k in w.keys()] == ["Enabled"]


def test_saved_plan_applied_days_later_defers_until_the_real_deletion_date(tmp_path: Path):
    """Item 7: the plan estimates now + window; applied three days later, KMS's DeletionDate is
    three days later too, and that is the date the deferred delete_store reports."""
    with world(tmp_path) as w:
        w.write("pay.yaml", xks_doc("pay", window=7, keys=[{"xksKeyId": "ext-1"}, {"xksKeyId": "ext-2"}]))
        assert not w.converge()[0].failed
        w.write("pay.yaml", xks_doc("pay", state="absent", window=7))
        plan_, desired = w.plan()
        estimated = plan_.steps[-1].deferred_until
        w.clock.advance(3 * 86400)
        result = w.apply(plan_, desired)
        real = max(aware_utc(k["DeletionDate"]) for k in w.keys())
        assert real >= estimated + timedelta(days=3) - timedelta(seconds=1)
        # whole seconds, rounded up: a date printed to the second is never early
        assert result.rerun_after() == ceil_seconds(real) > estimated
        deferred = [r for r in result.results if r.outcome == "deferred"]
        assert deferred and deferred[0].deferred_until == ceil_seconds(real)


def test_a_refusal_elsewhere_does_not_hold_back_the_rescue_of_keys_pending_deletion(cli):
    """A plan that refuses a change runs nothing else, except its rescues: a key pending deletion
    is lost on its date whether or not someone fixes an unrelated manifest first. CancelKeyDeletion
    is not destructive; the re-enabling and the rest wait for a plan without refusals."""
    from tests.e2e.helpers import xks_manifest

    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    with cli.kms() as kms:
        keys = [k["KeyId"] for k in kms.list_keys()["Keys"]
                if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("CustomKeyStoreId")]
        for key_id in keys:  # by mistake, by hand
            kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        kms.create_custom_key_store(  # a store that the next manifest misnames
            CustomKeyStoreName="ghost", CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="PUBLIC_ENDPOINT",
            XksProxyUriEndpoint="https://ghost.example.com", XksProxyUriPath="/kms/xks/v1",
            XksProxyAuthenticationCredential={"AccessKeyId": "ABCDEFGHIJKLMNOPQRST",
                                              "RawSecretAccessKey": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="})
    cli.write("m/ghost.yaml", "apiVersion: reconciler/v1\nkind: KeyStore\nmetadata: {name: ghost}\n"
                              "spec: {region: us-east-1, type: AWS_CLOUDHSM, state: absent}\n")

    run = cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert run.code == 1, run.both
    assert "the plan refuses 1 change(s) (ghost: " in run.out and "Only its 2 rescue(s) of keys pending deletion run now" in run.out
    assert "Rescued: the keys' deletion is cancelled" in run.out and "Converged" not in run.out
    assert "the plan refuses 1 change(s) (ghost: " in run.err and "only its rescues ran" in run.err
    assert "Traceback" not in run.both
    with cli.kms() as kms:
        assert {kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] for k in keys} == {"Disabled"}  # rescued
        assert "ghost" in {s["CustomKeyStoreName"] for s in kms.describe_custom_key_stores()["CustomKeyStores"]}

    (cli.workdir / "m/ghost.yaml").unlink()
    fixed = cli("apply", "--sandbox", "--auto-approve", "m")
    assert fixed.code == 0, fixed.both
    with cli.kms() as kms:
        assert {kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] for k in keys} == {"Enabled"}
