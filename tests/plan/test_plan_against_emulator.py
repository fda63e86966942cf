"""The planner's rules end to end in one process: manifests -> desired, emulator -> live (through
the reader and boto3), diff. Each test sets up live state with ordinary KMS calls."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.live.reader import ReadOptions, read_live
from reconciler.manifest.loader import load
from reconciler.plan.build import build_desired
from reconciler.plan.planner import diff
from reconciler.aws.ratelimit import RateLimiter
from tests.conftest import XKS_ACCESS_KEY_ID, XKS_SECRET, connect_and_wait

ENDPOINT = "https://xks-proxy-1.example.com"


def manifest(state="present", connection="connected", endpoint=ENDPOINT, path="/kms/xks/v1", keys=None,
             type_="EXTERNAL_KEY_STORE", name="pay") -> str:
    keys = keys if keys is not None else [("alias/pay-1", "ext-1"), ("alias/pay-2", "ext-2")]
    lines = "\n".join(f"    - {{alias: {a}, xksKeyId: {x}}}" for a, x in keys) or "    []"
    if type_ == "AWS_CLOUDHSM":
        body = """
          cloudHsm:
            clusterId: cluster-jxhlf7644ne
            trustAnchorCertificate: {fromFile: ca.pem}
            keyStorePassword: {fromEnv: KMSUSER_PASSWORD}"""
        lines = "\n".join(f"    - {{alias: {a}}}" for a, _ in keys) or "    []"
    else:
        body = f"""
          xks:
            connectivity: PUBLIC_ENDPOINT
            uriEndpoint: {endpoint}
            uriPath: {path}
            credential:
              accessKeyId: {XKS_ACCESS_KEY_ID}
              secretAccessKey: {{fromEnv: XKS_SECRET_ACCESS_KEY}}"""
    return textwrap.dedent(f"""\
        apiVersion: reconciler/v1
        kind: KeyStore
        metadata: {{name: {name}}}
        spec:
          type: {type_}
          state: {state}
          connection: {connection}
          deletion: {{pendingWindowDays: 7}}
        """) + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n  keys:\n" + lines + "\n"


@pytest.fixture
def planner(kms, sandbox, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XKS_SECRET_ACCESS_KEY", XKS_SECRET)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")

    def run(*docs: str):
        path = tmp_path / "m.yaml"
        path.write_text("---\n".join(docs))
        loaded = load([str(path)])
        assert not loaded.problems, loaded.problems
        desired = build_desired(loaded, "us-east-1", [str(path)])
        live = read_live(kms, "us-east-1", options=ReadOptions(workers=4, limiter=RateLimiter(enabled=False)),
                         now=sandbox.clock.now)
        steps, findings = diff(desired.state, live, sandbox.clock.now())
        return [s.action.value + (f":{s.key}" if s.key else "") for s in steps], steps, findings

    return run


def make_store(kms, sandbox, *, name="pay", connect=True, keys=("ext-1", "ext-2"), endpoint=ENDPOINT):
    store_id = kms.create_custom_key_store(
        CustomKeyStoreName=name, CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyUriEndpoint=endpoint, XksProxyUriPath="/kms/xks/v1",
        XksProxyAuthenticationCredential={"AccessKeyId": XKS_ACCESS_KEY_ID, "RawSecretAccessKey": XKS_SECRET},
    )["CustomKeyStoreId"]
    assert connect_and_wait(kms, sandbox, store_id) == "CONNECTED"
    ids = {}
    for n, xks_key_id in enumerate(keys, start=1):
        key_id = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId=xks_key_id)["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/{name}-{n}", TargetKeyId=key_id)
        ids[xks_key_id] = key_id
    if not connect:
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
        sandbox.clock.advance(sandbox.disconnect_delay_seconds)
    return store_id, ids


def test_create_from_nothing(planner):
    names, steps, _ = planner(manifest())
    assert names == ["create_store", "connect_store", "create_key:ext-1", "create_alias:alias/pay-1",
                     "create_key:ext-2", "create_alias:alias/pay-2"]


def test_in_sync_store_has_no_changes(planner, kms, sandbox):
    make_store(kms, sandbox)
    names, _, findings = planner(manifest())
    assert names == [] and findings == ()


def test_uri_path_in_place_and_endpoint_through_disconnect(planner, kms, sandbox):
    make_store(kms, sandbox)
    assert planner(manifest(path="/v2/kms/xks/v1"))[0] == ["update_store"]
    names, steps, _ = planner(manifest(endpoint="https://xks-proxy-9.example.com"))
    assert names == ["disconnect_store", "update_store", "connect_store"]
    assert "2 key(s) are unavailable" in steps[0].reason


def test_type_change_refused(planner, kms, sandbox):
    make_store(kms, sandbox)
    names, _, findings = planner(manifest(type_="AWS_CLOUDHSM"))
    assert names == [] and findings[0].kind == "refused"


def test_failed_store_repair_carries_code_and_fix(planner, kms, sandbox):
    sandbox.faults.connection_errors["pay"] = "XKS_PROXY_TIMED_OUT"
    store_id = kms.create_custom_key_store(
        CustomKeyStoreName="pay", CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyUriEndpoint=ENDPOINT, XksProxyUriPath="/kms/xks/v1",
        XksProxyAuthenticationCredential={"AccessKeyId": XKS_ACCESS_KEY_ID, "RawSecretAccessKey": XKS_SECRET},
    )["CustomKeyStoreId"]
    assert connect_and_wait(kms, sandbox, store_id) == "FAILED"
    names, steps, _ = planner(manifest(keys=[]))
    assert names == ["disconnect_store", "connect_store"]
    assert "XKS_PROXY_TIMED_OUT" in steps[0].reason and "does not answer in time" in steps[0].reason


def test_connection_follows_manifest_both_ways(planner, kms, sandbox):
    make_store(kms, sandbox)
    assert planner(manifest(connection="disconnected"))[0] == ["disconnect_store"]
    kms.disconnect_custom_key_store(CustomKeyStoreId=kms.describe_custom_key_stores()["CustomKeyStores"][0]["CustomKeyStoreId"])
    sandbox.clock.advance(sandbox.disconnect_delay_seconds)
    assert planner(manifest())[0] == ["connect_store"]
    assert planner(manifest(connection="disconnected"))[0] == []


def test_key_pending_deletion_is_rescued(planner, kms, sandbox):
    _, ids = make_store(kms, sandbox)
    kms.schedule_key_deletion(KeyId=ids["ext-2"], PendingWindowInDays=7)
    names, steps, _ = planner(manifest())
    assert names == ["cancel_key_deletion:ext-2", "update_key:ext-2"]
    assert "rescued" in steps[0].reason


def test_unmanaged_store_and_drift_key_reported_never_changed(planner, kms, sandbox):
    make_store(kms, sandbox, keys=("ext-1", "ext-2", "ext-3"))
    make_store(kms, sandbox, name="other", keys=("o-1",), endpoint="https://other.example.com")
    names, _, findings = planner(manifest())
    assert names == []
    assert sorted((f.kind, f.store) for f in findings) == [("drift_key", "pay"), ("unmanaged_store", "other")]


def test_decommission_connected_store_with_two_keys(planner, kms, sandbox):
    make_store(kms, sandbox)
    names, steps, _ = planner(manifest(state="absent"))
    assert names == ["schedule_key_deletion:ext-1", "schedule_key_deletion:ext-2", "disconnect_store", "delete_store"]
    from datetime import timedelta

    assert steps[-1].deferred_until == sandbox.clock.now() + timedelta(days=7)


def test_decommission_after_keys_scheduled_waits_for_latest_date(planner, kms, sandbox):
    _, ids = make_store(kms, sandbox, connect=False)
    dates = [kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=w)["DeletionDate"]
             for k, w in zip(ids.values(), (7, 9))]
    names, steps, _ = planner(manifest(state="absent"))
    assert names == ["delete_store"]
    assert steps[0].deferred_until == max(dates)


def test_absent_and_missing_is_no_change(planner):
    names, _, findings = planner(manifest(state="absent"))
    assert names == [] and findings == ()
