"""A safer decommission, end to end on the sandbox: the quarantine (disconnect first, its start
recorded as a tag on each key, deletion scheduled only after it), CloudTrail's evidence of last
use (a recent use refuses, --allow-recent-use lets it through, an attempt during the quarantine
refuses), and a quarantined store put back to present.

Time moves on the emulator's clock (``sandbox advance``), never the wall clock."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta

import pytest

from reconciler.plan.matching import QUARANTINE_TAG
from reconciler.plan.model import ceil_seconds, iso
from tests.e2e.helpers import cli, cli_process, plan_json, xks_manifest  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


def manifest(state: str, *, quarantine: int = 0, refuse: int | None = None) -> str:
    text = xks_manifest(state=state)
    deletion = "    pendingWindowDays: 7\n"
    extra = f"    quarantineDays: {quarantine}\n" + (f"    refuseIfUsedWithinDays: {refuse}\n" if refuse is not None else "")
    assert deletion in text
    return text.replace(deletion, deletion + extra)


def store(cli) -> dict:
    with cli.kms() as kms:
        return {s["CustomKeyStoreName"]: s for s in kms.describe_custom_key_stores()["CustomKeyStores"]}["payments-xks"]


def keys(cli) -> dict[str, dict]:
    """XksKeyId -> DescribeKey's metadata plus its tags, for the store's keys."""
    with cli.kms() as kms:
        found = {}
        for entry in kms.list_keys()["Keys"]:
            meta = kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]
            if meta.get("CustomKeyStoreId"):
                tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=meta["KeyId"])["Tags"]}
                found[meta["XksKeyConfiguration"]["Id"]] = {**meta, "tags": tags}
        return found


def use(cli, xks_key_id: str, operation: str = "Decrypt") -> str | None:
    """Use a key through the sandbox; the error code when KMS refuses it."""
    key_id = keys(cli)[xks_key_id]["KeyId"]
    with cli.kms() as kms:
        try:
            blob = kms.encrypt(KeyId=key_id, Plaintext=b"payload")["CiphertextBlob"]
            if operation == "Decrypt":
                kms.decrypt(CiphertextBlob=blob)
        except kms.exceptions.ClientError as exc:
            return exc.response["Error"]["Code"]
    return None


def by_action(plan: dict, action: str) -> list[dict]:
    return [s for s in plan["steps"] if s["action"] == action]


def test_quarantine_disconnects_first_schedules_after_it_and_deletes_the_store_after_the_window(cli, tmp_path):
    """Done when #1: quarantineDays 14: the first apply only disconnects (exit 2, keys untouched and
    recoverable); the keys are scheduled after a 15-day advance; the store is deleted after the
    window; a fresh process with no journal, elsewhere, plans the same dates."""
    cli.write("m/payments.yaml", manifest("present"))
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", manifest("absent", quarantine=14))

    planned = plan_json(cli("plan", "--sandbox", "--format", "json", "m"))
    assert [s["action"] for s in planned["steps"]][:2] == ["disconnect_store", "start_quarantine"]
    for step in by_action(planned, "schedule_key_deletion"):
        assert step["deferredUntil"] is not None and "quarantine" in step["reason"]

    first = cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert first.code == 2, first.both
    assert store(cli)["ConnectionState"] == "DISCONNECTED"
    live = keys(cli)
    assert {k["KeyState"] for k in live.values()} == {"Unavailable"}  # not PendingDeletion: recoverable
    starts = {k["tags"][QUARANTINE_TAG] for k in live.values()}
    assert len(starts) == 1
    started = datetime.fromisoformat(starts.pop().replace("Z", "+00:00"))
    ends = (started + timedelta(days=14)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # exit 2 says when a re-run makes progress (the quarantine's end), not only when the last step is due
    assert f"re-run after {ends} to continue (" in first.out and "the last after" in first.out, first.out

    # the date lives in AWS: a second machine (a fresh process, another directory, no journal) sees it
    here = plan_json(cli("plan", "--sandbox", "--format", "json", "m"))
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(cli.workdir / "m", elsewhere / "m")
    from tests.e2e.helpers import Cli

    other = Cli(elsewhere)  # each command in a new process
    other.env["RECONCILER_SANDBOX_DIR"] = str(cli.sandbox_dir)
    there = other("plan", "--sandbox", "--format", "json", "m")
    assert there.code == 2, there.both
    assert not (elsewhere / "plans").exists()
    for plan in (here, plan_json(there)):
        assert {s["deferredUntil"] for s in by_action(plan, "schedule_key_deletion")} == {ends}
        assert by_action(plan, "start_quarantine") == [] and by_action(plan, "disconnect_store") == []
    assert [s["deferredUntil"] for s in by_action(here, "delete_store")] == \
        [s["deferredUntil"] for s in by_action(plan_json(there), "delete_store")]

    # the rescue window, visible: the markdown plan puts it first, with the schedule as a gantt chart
    md = cli("plan", "--sandbox", "--format", "markdown", "m").out
    assert md.index("**Rescue window**") < md.index("| | step |")
    assert "```mermaid\ngantt" in md
    assert f"quarantine :q0, {started.strftime('%Y-%m-%d %H:%M')}, {ends[:16].replace('T', ' ')}" in md
    assert "store deletion :milestone" in md and "today :milestone" in md
    assert "ext-key-0001: would be deleted on" in md and "declare the key under spec.keys" in md
    status = cli("status", "--sandbox", "m")
    assert f"payments-xks: in quarantine since {started.strftime('%Y-%m-%dT%H:%M:%SZ')}" in status.out

    # still quarantined after 13 days: nothing scheduled
    assert cli("sandbox", "advance", "13d").code == 0
    assert cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 2
    assert {k["KeyState"] for k in keys(cli).values()} == {"Unavailable"}

    assert cli("sandbox", "advance", "2d").code == 0  # 15 days
    second = cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert second.code == 2, second.both
    live = keys(cli)
    assert {k["KeyState"] for k in live.values()} == {"PendingDeletion"}
    status = cli("status", "--sandbox", "--format", "json", "m")
    [row] = json.loads(status.out)["stores"]
    deletion = iso(ceil_seconds(live["ext-key-0001"]["DeletionDate"]))  # dates print rounded up
    assert {"key": "ext-key-0001", "keyId": live["ext-key-0001"]["KeyId"], "deletionDate": deletion,
            "rescue": "set spec.state: present and declare the key under spec.keys (xksKeyId: ext-key-0001) in "
                      "the store's manifest, then apply"} in row["pendingDeletion"]
    text = plan_json(cli("plan", "--sandbox", "--format", "json", "m"))
    assert {k["deletionDate"] for k in text["rescueWindow"][0]["keys"]} >= {deletion}

    assert cli("sandbox", "advance", "8d").code == 0
    third = cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert third.code == 0, third.both
    with cli.kms() as kms:
        assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_a_recent_decrypt_refuses_naming_the_call_and_allow_recent_use_lets_it_through(cli):
    """Done when #2: a key used (Decrypt) three days ago makes the plan refuse, naming the call;
    --allow-recent-use lets it through; a key unused for 60 days passes."""
    cli.write("m/payments.yaml", manifest("present"))
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    assert use(cli, "ext-key-0002", "Encrypt") is None  # its last use: 60 days before the plan
    assert cli("sandbox", "advance", "57d").code == 0
    assert use(cli, "ext-key-0001", "Decrypt") is None  # Encrypt, then Decrypt: 3 days before the plan
    assert cli("sandbox", "advance", "3d").code == 0
    cli.write("m/payments.yaml", manifest("absent"))

    refused = cli("plan", "--sandbox", "--format", "json", "m")
    assert refused.code == 1, refused.both
    plan = plan_json(refused)
    [finding] = [f for f in plan["findings"] if f["kind"] == "refused"]
    assert finding["key"] == "ext-key-0001"
    assert "Decrypt by arn:aws:iam::" in finding["message"] and "within the last 30 days" in finding["message"]
    [scheduled] = by_action(plan, "schedule_key_deletion")
    assert scheduled["key"] == "ext-key-0002"
    assert scheduled["params"]["lastUse"]["operation"] == "Encrypt"
    text = cli("plan", "--sandbox", "m")
    assert text.code == 1 and "Decrypt by" in text.out and "--allow-recent-use" in text.out

    applied = cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m")
    assert applied.code == 1 and "refuses" in applied.both
    assert {k["KeyState"] for k in keys(cli).values()} == {"Enabled"}  # nothing changed

    allowed = cli("plan", "--sandbox", "--format", "json", "--allow-recent-use", "m")
    assert allowed.code == 2, allowed.both
    assert {s["key"] for s in by_action(plan_json(allowed), "schedule_key_deletion")} == {"ext-key-0001", "ext-key-0002"}
    assert cli("plan", "--sandbox", "--allow-recent-use", "--out", "plans/p.json", "m").code == 2
    assert json.loads((cli.workdir / "plans/p.json").read_text())["options"] == {"allowRecentUse": True}
    done = cli("apply", "--sandbox", "--allow-destroy", "plans/p.json")
    assert done.code == 2, done.both
    assert {k["KeyState"] for k in keys(cli).values()} == {"PendingDeletion"}


def test_an_attempt_during_the_quarantine_refuses_and_uses_before_it_do_not(cli):
    """Done when #2: an attempt to use a key during its quarantine (failed: the store is
    disconnected) refuses its deletion at the end of the quarantine; a use from before the
    quarantine (within refuseIfUsedWithinDays) does not."""
    cli.write("m/payments.yaml", manifest("present"))
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    assert use(cli, "ext-key-0001") is None and use(cli, "ext-key-0002") is None  # before the quarantine
    cli.write("m/payments.yaml", manifest("absent", quarantine=14))
    assert cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 2
    assert cli("sandbox", "advance", "5d").code == 0
    assert use(cli, "ext-key-0001") == "KMSInvalidStateException"  # someone still needs it
    assert cli("sandbox", "advance", "10d").code == 0

    run = cli("plan", "--sandbox", "--format", "json", "m")
    assert run.code == 1, run.both
    plan = plan_json(run)
    [finding] = [f for f in plan["findings"] if f["kind"] == "refused"]
    assert finding["key"] == "ext-key-0001"
    assert "during its quarantine" in finding["message"] and "KMSInvalidStateException" in finding["message"]
    assert "Encrypt by" in finding["message"]
    assert [s["key"] for s in by_action(plan, "schedule_key_deletion")] == ["ext-key-0002"]
    assert by_action(plan, "schedule_key_deletion")[0]["deferredUntil"] is None


def test_a_quarantined_store_put_back_to_present_reconnects_untags_and_schedules_nothing(cli):
    """Done when #3: back to present: reconnected, the quarantine tags removed, nothing scheduled."""
    cli.write("m/payments.yaml", manifest("present"))
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", manifest("absent", quarantine=14))
    assert cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 2
    assert all(QUARANTINE_TAG in k["tags"] for k in keys(cli).values())

    cli.write("m/payments.yaml", manifest("present"))
    plan = plan_json(cli("plan", "--sandbox", "--format", "json", "m"))
    assert [s["action"] for s in plan["steps"]] == ["connect_store", "end_quarantine"]
    run = cli("apply", "--sandbox", "--auto-approve", "m")
    assert run.code == 0, run.both
    assert store(cli)["ConnectionState"] == "CONNECTED"
    live = keys(cli)
    assert {k["KeyState"] for k in live.values()} == {"Enabled"}
    assert not any(QUARANTINE_TAG in k["tags"] for k in live.values())
    assert live["ext-key-0001"]["tags"] == {"team": "payments", "reconciler:managed-key": "ext-key-0001"}
    assert cli("plan", "--sandbox", "m").code == 0


def test_a_saved_plan_applied_days_later_counts_the_quarantine_from_when_it_began(cli):
    """The plan counts the quarantine from when it was made; applied two days later, the quarantine
    begins then (the tag's date), and the dates apply prints (exit 2's re-run date, the deferred
    steps') are counted from the tag, not from the plan: a re-run at the printed date makes progress."""
    cli.write("m/payments.yaml", manifest("present"))
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", manifest("absent", quarantine=14))
    assert cli("plan", "--sandbox", "--out", "plans/q.json", "m").code == 2
    planned = json.loads((cli.workdir / "plans/q.json").read_text())
    [planned_end] = {s["deferredUntil"] for s in by_action(planned, "schedule_key_deletion")}
    [planned_delete] = [s["deferredUntil"] for s in by_action(planned, "delete_store")]

    assert cli("sandbox", "advance", "2d").code == 0
    applied = cli("apply", "--sandbox", "--allow-destroy", "--format", "json", "plans/q.json")
    assert applied.code == 2, applied.both
    [start] = {k["tags"][QUARANTINE_TAG] for k in keys(cli).values()}
    ends = iso(datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(days=14))
    assert ends > planned_end
    events = [json.loads(line) for line in applied.out.splitlines() if line.startswith("{")]
    deferred = {e["step"]: e["deferredUntil"] for e in events if e["event"] == "deferred"}
    assert {v for k, v in deferred.items() if ":schedule_key_deletion:" in k} == {ends}
    shift = datetime.fromisoformat(ends.replace("Z", "+00:00")) - datetime.fromisoformat(planned_end.replace("Z", "+00:00"))
    assert deferred["payments-xks:delete_store"] == iso(datetime.fromisoformat(planned_delete.replace("Z", "+00:00")) + shift)
    [end] = [e for e in events if e["event"] == "run-end"]
    assert end["rerunAfter"] == ends and end["finishAfter"] == deferred["payments-xks:delete_store"]

    # just past the printed date (the tag's start is rounded up to the second): the keys are scheduled
    assert cli("sandbox", "advance", "14d").code == 0 and cli("sandbox", "advance", "2s").code == 0
    assert cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 2
    assert {k["KeyState"] for k in keys(cli).values()} == {"PendingDeletion"}


def test_a_saved_plan_applied_after_the_quarantine_would_have_ended_still_quarantines(cli):
    """A plan saved before the quarantine began, applied 20 days later (after its 14 planned days):
    the quarantine begins with that apply (disconnect, tags), and no key is scheduled then; the
    keys are scheduled by a run after the quarantine has lasted its 14 days from the tag."""
    cli.write("m/payments.yaml", manifest("present"))
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", manifest("absent", quarantine=14))
    assert cli("plan", "--sandbox", "--out", "plans/q.json", "m").code == 2
    assert cli("sandbox", "advance", "20d").code == 0

    applied = cli("apply", "--sandbox", "--allow-destroy", "plans/q.json")
    assert applied.code == 2, applied.both
    live = keys(cli)
    assert {k["KeyState"] for k in live.values()} == {"Unavailable"}  # disconnected, not scheduled
    [start] = {k["tags"][QUARANTINE_TAG] for k in live.values()}
    ends = iso(datetime.fromisoformat(start.replace("Z", "+00:00")) + timedelta(days=14))
    assert f"re-run after {ends}" in applied.out and "A saved plan is applied once: then make a new plan" in applied.out

    assert cli("sandbox", "advance", "13d").code == 0
    assert cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 2
    assert {k["KeyState"] for k in keys(cli).values()} == {"Unavailable"}  # 13 of 14 days
    assert cli("sandbox", "advance", "1d").code == 0 and cli("sandbox", "advance", "2s").code == 0
    assert cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 2
    assert {k["KeyState"] for k in keys(cli).values()} == {"PendingDeletion"}


def test_a_plan_saved_during_the_quarantine_cannot_schedule_a_key_someone_tried_to_use(cli):
    """A plan made during the quarantine cannot have checked the attempts to use a key up to its
    end; applied after the end, it schedules nothing (a new plan must check CloudTrail), and the new
    plan refuses the key someone tried to use. The saved plan already warns of the attempt."""
    cli.write("m/payments.yaml", manifest("present"))
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", manifest("absent", quarantine=14))
    assert cli("apply", "--sandbox", "--auto-approve", "--allow-destroy", "m").code == 2
    assert cli("sandbox", "advance", "2d").code == 0
    assert use(cli, "ext-key-0001") == "KMSInvalidStateException"
    assert cli("sandbox", "advance", "1d").code == 0

    saved = cli("plan", "--sandbox", "--format", "json", "--out", "plans/q.json", "m")
    assert saved.code == 2, saved.both
    [warning] = [f for f in plan_json(saved)["findings"] if f["kind"] == "warning"]
    assert warning["key"] == "ext-key-0001" and "during its quarantine" in warning["message"]

    assert cli("sandbox", "advance", "12d").code == 0
    applied = cli("apply", "--sandbox", "--allow-destroy", "plans/q.json")
    assert applied.code == 2, applied.both
    assert "a new plan checks CloudTrail" in applied.out
    assert {k["KeyState"] for k in keys(cli).values()} == {"Unavailable"}  # nothing scheduled

    fresh = cli("plan", "--sandbox", "--format", "json", "m")
    assert fresh.code == 1
    assert [f["key"] for f in plan_json(fresh)["findings"] if f["kind"] == "refused"] == ["ext-key-0001"]
