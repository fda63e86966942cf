"""``reconciler status``: every live store at a glance, and which ones the manifests manage."""

from __future__ import annotations

import json

from tests.day2.helpers import Sandbox, connect
from tests.e2e.helpers import xks_manifest


def _setup(sb: Sandbox) -> None:
    sb.write("m/payments.yaml", xks_manifest())
    assert sb.run("apply", "--sandbox", "--auto-approve", "m").code == 0
    sb.fault(store="broken", connection_error="XKS_PROXY_INVALID_TLS_CONFIGURATION")
    with sb.kms() as kms:
        from tests.e2e.helpers import ACCESS_KEY_ID, SECRET

        store = kms.create_custom_key_store(
            CustomKeyStoreName="broken", CustomKeyStoreType="EXTERNAL_KEY_STORE",
            XksProxyConnectivity="PUBLIC_ENDPOINT", XksProxyUriEndpoint="https://xks.broken.example.com",
            XksProxyUriPath="/kms/xks/v1",
            XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET},
        )["CustomKeyStoreId"]
        assert connect(kms, store) == "FAILED"
        keys = [k["KeyId"] for k in kms.list_keys()["Keys"]]
        kms.schedule_key_deletion(KeyId=keys[0], PendingWindowInDays=9)
        kms.schedule_key_deletion(KeyId=keys[1], PendingWindowInDays=8)


def test_status_lists_every_store_with_connection_keys_and_earliest_deletion(sb: Sandbox):
    _setup(sb)
    sb.write("m/legacy.yaml", xks_manifest(name="legacy-xks", state="absent", endpoint="https://legacy.example.com"))
    sb.write("m/future.yaml", xks_manifest(name="future-xks", endpoint="https://future.example.com", keys="[]"))
    run = sb.run("status", "--sandbox", "--format", "json", "m")
    assert run.code == 0, run.both
    report = json.loads(run.out)
    rows = {r["name"]: r for r in report["stores"]}
    assert set(rows) == {"payments-xks", "broken"}
    payments = rows["payments-xks"]
    assert payments["connectionState"] == "CONNECTED" and payments["connectionErrorCode"] is None
    assert payments["keyStates"] == {"PendingDeletion": 2} and payments["keys"] == 2
    assert payments["managed"] is True and payments["management"] == "managed"
    broken = rows["broken"]
    assert broken["connectionState"] == "FAILED"
    assert broken["connectionErrorCode"] == "XKS_PROXY_INVALID_TLS_CONFIGURATION"
    assert "TLS 1.2 or 1.3" in broken["fix"]
    assert broken["managed"] is False and broken["keys"] == 0
    assert report["declaredNotCreated"] == ["future-xks"]


def test_earliest_deletion_is_the_earliest(sb: Sandbox):
    _setup(sb)
    report = json.loads(sb.run("status", "--sandbox", "--format", "json").out)
    payments = next(r for r in report["stores"] if r["name"] == "payments-xks")
    with sb.kms() as kms:
        dates = sorted(kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["DeletionDate"]
                       for k in kms.list_keys()["Keys"])
    # rounded up to the second, as the rescue entries and the plan show it (one date per key everywhere)
    from reconciler.display import ceil_seconds

    assert payments["earliestDeletionDate"] == ceil_seconds(dates[0]).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert payments["earliestDeletionDate"] in {k["deletionDate"] for k in payments["pendingDeletion"]}
    assert payments["managed"] is None  # no manifests given: not known


def test_status_text_table(sb: Sandbox):
    _setup(sb)
    run = sb.run("status", "--sandbox", "m")
    assert run.code == 0, run.both
    lines = run.out.splitlines()
    header = next(line for line in lines if line.startswith("NAME"))
    assert header.split() == ["NAME", "ID", "TYPE", "CONNECTION", "KEYS", "NEXT", "DELETION", "MANAGED"]
    broken = next(line for line in lines if line.startswith("broken "))
    assert "FAILED (XKS_PROXY_INVALID_TLS_CONFIGURATION)" in broken and broken.rstrip().endswith("no")
    payments = next(line for line in lines if line.startswith("payments-xks "))
    assert "2 PendingDeletion" in payments and payments.rstrip().endswith("yes")
    assert "broken: XKS_PROXY_INVALID_TLS_CONFIGURATION: the proxy's TLS configuration" in run.out
    assert "1 store(s) in no manifest" in run.out
    # without manifests there is no MANAGED column
    plain = sb.run("status", "--sandbox")
    assert "MANAGED" not in plain.out


def test_status_of_an_empty_region(sb: Sandbox):
    run = sb.run("status", "--sandbox")
    assert run.code == 0 and "No custom key stores in this region." in run.out


def test_the_rescue_command_of_an_unmanaged_key_reaches_the_sandbox_when_pasted(sb: Sandbox):
    """Every printed next step works when pasted: for the embedded sandbox, the AWS CLI command that
    cancels a key's deletion comes with the `reconciler sandbox serve` that makes it reachable, the
    sandbox's credentials and the served endpoint (without them it would go to AWS)."""
    import shlex

    _setup(sb)
    report = json.loads(sb.run("status", "--sandbox", "--format", "json").out)
    payments = next(r for r in report["stores"] if r["name"] == "payments-xks")
    hints = [k["rescue"] for k in payments["pendingDeletion"]]
    assert len(hints) == 2
    serve, _, cli = hints[0].partition(" (in another terminal), then ")
    assert shlex.split(serve) == ["reconciler", "sandbox", "serve", "--sandbox-dir", str(sb.directory.resolve())]
    words = shlex.split(cli)
    assert words[:3] == ["env", "AWS_ACCESS_KEY_ID=sandbox", "AWS_SECRET_ACCESS_KEY=sandbox"]
    assert words[3:6] == ["aws", "kms", "cancel-key-deletion"]
    assert words[-2:] == ["--endpoint-url", "http://127.0.0.1:4566"] and "--region" in words


def test_the_rescue_command_names_the_endpoint_it_read():
    from reconciler.aws.cli_hint import aws_cli

    assert aws_cli(["kms", "cancel-key-deletion", "--key-id", "k"], "eu-west-1", {"endpoint": "https://kms.example"}) == (
        "aws kms cancel-key-deletion --key-id k --region eu-west-1 --endpoint-url https://kms.example")
    assert aws_cli(["kms", "cancel-key-deletion", "--key-id", "k"], "eu-west-1") == (
        "aws kms cancel-key-deletion --key-id k --region eu-west-1")
