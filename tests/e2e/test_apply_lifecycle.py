"""Apply end to end with --sandbox, as a pipeline would run it: the first two stories with each
command in a new process, the others through the same entry point in this process (the sandbox
keeps its state on disk between commands either way)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.helpers import SECRET, plan_json, xks_manifest

pytestmark = pytest.mark.e2e


def stores(cli) -> dict[str, dict]:
    with cli.kms() as kms:
        return {s["CustomKeyStoreName"]: s for s in kms.describe_custom_key_stores()["CustomKeyStores"]}


def keys_of(cli, store_id: str) -> list[dict]:
    with cli.kms() as kms:
        metas = [kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"] for k in kms.list_keys()["Keys"]]
        return [m for m in metas if m.get("CustomKeyStoreId") == store_id]


def test_create_connected_store_with_two_keys_and_aliases_then_apply_is_a_noop(cli_process):
    cli = cli_process
    cli.write("m/payments.yaml", xks_manifest())
    run = cli("apply", "--sandbox", "--auto-approve", "m")
    assert run.code == 0, run.both
    assert "Converged" in run.out
    store = stores(cli)["payments-xks"]
    assert store["ConnectionState"] == "CONNECTED"
    keys = keys_of(cli, store["CustomKeyStoreId"])
    assert sorted(k["XksKeyConfiguration"]["Id"] for k in keys) == ["ext-key-0001", "ext-key-0002"]
    assert all(k["KeyState"] == "Enabled" for k in keys)
    with cli.kms() as kms:
        aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert {"alias/payments-primary", "alias/payments-secondary"} <= aliases
    # apply after apply: nothing to do
    again = cli("apply", "--sandbox", "--auto-approve", "m")
    assert again.code == 0, again.both
    assert "No changes" in again.out
    assert cli("plan", "--sandbox", "m").code == 0


def test_endpoint_change_disconnects_updates_reconnects(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", xks_manifest(endpoint="https://xks-new.example.com"))
    planned = cli("plan", "--sandbox", "--format", "json", "m")
    assert planned.code == 2
    steps = plan_json(planned)["steps"]
    assert [s["action"] for s in steps] == ["disconnect_store", "update_store", "connect_store"]
    assert "unavailable" in steps[0]["reason"]
    run = cli("apply", "--sandbox", "--auto-approve", "--format", "json", "m")
    assert run.code == 0, run.both
    events = [json.loads(line) for line in run.out.splitlines()]
    oks = [e["step"] for e in events if e["event"] == "ok"]
    assert oks == [s["id"] for s in steps]
    store = stores(cli)["payments-xks"]
    assert store["XksProxyConfiguration"]["UriEndpoint"] == "https://xks-new.example.com"
    assert store["ConnectionState"] == "CONNECTED"


def test_decommission_spans_two_runs_across_the_deletion_window(cli_process):
    cli = cli_process
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    store_id = stores(cli)["payments-xks"]["CustomKeyStoreId"]
    cli.write("m/payments.yaml", xks_manifest(state="absent"))

    planned = cli("plan", "--sandbox", "--format", "json", "m")
    assert planned.code == 2
    steps = plan_json(planned)["steps"]
    assert [s["action"] for s in steps] == ["schedule_key_deletion", "schedule_key_deletion",
                                           "disconnect_store", "delete_store"]
    assert steps[-1]["deferredUntil"] is not None

    first = cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert first.code == 2, first.both
    assert "re-run after" in first.out
    assert stores(cli)["payments-xks"]["ConnectionState"] == "DISCONNECTED"
    assert [k["KeyState"] for k in keys_of(cli, store_id)] == ["PendingDeletion", "PendingDeletion"]

    assert cli("sandbox", "advance", "8d").code == 0
    second = cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert second.code == 0, second.both
    assert "payments-xks" not in stores(cli)
    with cli.kms() as kms:
        with pytest.raises(kms.exceptions.CustomKeyStoreNotFoundException):
            kms.describe_custom_key_stores(CustomKeyStoreId=store_id)
    assert cli("plan", "--sandbox", "m").code == 0


def test_failed_connection_shows_error_code_and_fix(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("sandbox", "fault", "--store", "payments-xks", "--connection-error", "XKS_PROXY_NOT_REACHABLE").code == 0
    run = cli("apply", "--sandbox", "--auto-approve", "m")
    assert run.code == 1
    assert "XKS_PROXY_NOT_REACHABLE" in run.out
    assert "check spec.xks.uriEndpoint" in run.out
    assert "skipped" in run.out  # the keys depend on the connection


def test_saved_plan_made_stale_by_a_change_is_refused(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", xks_manifest(connection="disconnected"))
    assert cli("plan", "--sandbox", "--out", "plans/p.json", "m").code == 2
    # someone changes the store in between
    with cli.kms() as kms:
        store_id = kms.describe_custom_key_stores(CustomKeyStoreName="payments-xks")["CustomKeyStores"][0]["CustomKeyStoreId"]
        kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyUriPath="/other/kms/xks/v1")
    run = cli("apply", "--sandbox", "plans/p.json")
    assert run.code == 1
    assert "live state changed" in run.err and "uriPath" in run.err
    assert stores(cli)["payments-xks"]["ConnectionState"] == "CONNECTED"  # nothing applied


def test_saved_plan_refused_when_manifests_changed_or_file_tampered(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("plan", "--sandbox", "--out", "plans/p.json", "m").code == 2
    text = (cli.workdir / "plans/p.json").read_text()
    (cli.workdir / "plans/t.json").write_text(text.replace("payments-primary", "payments-primarz"))
    tampered = cli("apply", "--sandbox", "plans/t.json")
    assert tampered.code == 1 and "digest" in tampered.err
    (cli.workdir / "plans/trunc.json").write_text(text[: len(text) // 2])
    truncated = cli("apply", "--sandbox", "plans/trunc.json")
    assert truncated.code == 1 and "truncated" in truncated.err
    cli.write("m/payments.yaml", xks_manifest(endpoint="https://changed.example.com"))
    stale = cli("apply", "--sandbox", "plans/p.json")
    assert stale.code == 1 and "manifests" in stale.err and "changed" in stale.err
    assert "payments-xks" not in stores(cli)


def test_saved_plan_applies_exactly(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("plan", "--sandbox", "--out", "plans/p.json", "m").code == 2
    shown = cli("show", "plans/p.json")
    assert shown.code == 0 and "create_store" in shown.out
    run = cli("apply", "--sandbox", "plans/p.json")
    assert run.code == 0, run.both
    assert stores(cli)["payments-xks"]["ConnectionState"] == "CONNECTED"


def test_key_scheduled_for_deletion_and_declared_is_rescued(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    store_id = stores(cli)["payments-xks"]["CustomKeyStoreId"]
    victim = next(k for k in keys_of(cli, store_id) if k["XksKeyConfiguration"]["Id"] == "ext-key-0002")
    with cli.kms() as kms:
        kms.schedule_key_deletion(KeyId=victim["KeyId"], PendingWindowInDays=7)
    planned = cli("plan", "--sandbox", "--format", "json", "m")
    steps = plan_json(planned)["steps"]
    assert [s["action"] for s in steps] == ["cancel_key_deletion", "update_key"]
    assert "rescued" in steps[0]["reason"]
    run = cli("apply", "--sandbox", "--auto-approve", "m")  # no --allow-destroy needed to rescue
    assert run.code == 0, run.both
    rescued = next(k for k in keys_of(cli, store_id) if k["KeyId"] == victim["KeyId"])
    assert rescued["KeyState"] == "Enabled"


def test_apply_without_allow_destroy_does_nothing_destructive_and_names_the_flag(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    store_id = stores(cli)["payments-xks"]["CustomKeyStoreId"]
    cli.write("m/payments.yaml", xks_manifest(state="absent"))
    run = cli("apply", "--sandbox", "--auto-approve", "m")
    assert run.code == 1
    assert "--allow-destroy" in run.err and "nothing was changed" in run.err
    assert all(k["KeyState"] == "Enabled" for k in keys_of(cli, store_id))
    assert stores(cli)["payments-xks"]["ConnectionState"] == "CONNECTED"


def test_apply_without_tty_or_auto_approve_refuses(cli):
    cli.write("m/payments.yaml", xks_manifest())
    run = cli("apply", "--sandbox", "m")
    assert run.code == 1 and "--auto-approve" in run.err
    assert "payments-xks" not in stores(cli)


def test_journal_records_each_step_without_secrets(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    journal = (cli.workdir / "plans/journal.jsonl").read_text()
    events = [json.loads(line) for line in journal.splitlines()]
    assert {"run-start", "start", "ok", "run-end"} <= {e["event"] for e in events}
    assert all("time" in e and "run" in e for e in events)
    assert SECRET not in journal
    for run in cli.runs:
        assert SECRET not in run.both
