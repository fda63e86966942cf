"""Concurrent runs: two applies against the same account and region never interleave.

* the embedded sandbox: a lock file in the sandbox directory (two real processes);
* a DynamoDB lock table (``--lock-table``), Terraform's S3 backend convention, under moto: the
  lock itself in process, ``run_apply`` with two threads, and two real processes against a
  served sandbox (whose moto also answers DynamoDB), including a lock left by a killed run and
  ``force-unlock``;
* without a lock table, the stale-plan check refuses a saved plan another run made stale.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import threading
import time
from pathlib import Path

import boto3
import pytest

from reconciler.apply.lock import DynamoDBLock, FileLock, LockHeld, LockInfo, held, lock_id
from reconciler.errors import UserError
from tests.e2e.helpers import sandbox_server, xks_manifest
from tests.reliability.forked import ForkedCli

TABLE = "reconciler-locks"


def make_table(dynamodb) -> None:
    dynamodb.create_table(TableName=TABLE, AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")


# -- the lock file of the embedded sandbox -----------------------------------------------------

@pytest.mark.e2e
def test_second_sandbox_apply_waits_then_fails_naming_the_holder(tmp_path):
    cli = ForkedCli(tmp_path)
    cli.write("m/payments.yaml", xks_manifest())
    first = cli.start("apply", "--sandbox", "--auto-approve", "--format", "json", "m", stop_at=("wait", 1))
    assert first.wait_stopped()  # holds the lock, in the middle of connect_store
    run_id = json.loads(first.out.read_text().splitlines()[0])["run"]

    started = time.monotonic()
    second = cli("apply", "--sandbox", "--auto-approve", "--lock-timeout", "1s", "m")
    assert second.code == 1
    assert time.monotonic() - started >= 1.0  # it waited
    assert "Waiting up to 1s for the lock" in second.err
    assert f"another apply holds the lock on {cli.sandbox_dir}/apply-us-east-1.lock" in second.err
    assert f"run {run_id}" in second.err and f"pid {first.pid}" in second.err
    assert "nothing was changed" in second.err
    assert second.out == ""  # it did not even read the live state, let alone plan

    # the second apply waits while the first finishes, then finds nothing to do
    waiting = cli.start("apply", "--sandbox", "--auto-approve", "--lock-timeout", "60s", "m")
    time.sleep(1.0)
    assert waiting.process.is_alive()
    first.cont()
    assert first.wait().code == 0
    after = waiting.wait()
    assert after.code == 0, after.both
    assert "No changes" in after.out
    journal = [json.loads(line) for line in (tmp_path / "plans/journal.jsonl").read_text().splitlines()]
    assert [e["run"] for e in journal if e["event"] == "run-start"] == [run_id]  # never interleaved


@pytest.mark.e2e
def test_a_killed_holder_leaves_no_sandbox_lock_behind(tmp_path):
    cli = ForkedCli(tmp_path)
    cli.write("m/payments.yaml", xks_manifest())
    first = cli.start("apply", "--sandbox", "--auto-approve", "--format", "json", "m", stop_at=("end", 1))
    assert first.wait_stopped()
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 1  # locked
    assert first.kill() == -9
    run = cli("apply", "--sandbox", "--auto-approve", "m")  # the kernel released the flock
    assert run.code == 0, run.both


def test_lock_table_is_refused_with_the_embedded_sandbox(tmp_path):
    cli = ForkedCli(tmp_path)
    cli.write("m/payments.yaml", xks_manifest())
    run = cli("apply", "--sandbox", "--auto-approve", "--lock-table", TABLE, "m")
    assert run.code == 1 and "--lock-table is for AWS" in run.err


def test_file_lock_in_process(tmp_path):
    path = tmp_path / "apply.lock"
    one, two = FileLock(path), FileLock(path)
    a = LockInfo.for_this_process("run-a", str(path))
    assert one.try_acquire(a) is None
    holder = two.try_acquire(LockInfo.for_this_process("run-b", str(path)))
    assert holder is not None and holder.ID == "run-a" and holder.PID == os.getpid()
    one.release(a)
    assert two.try_acquire(LockInfo.for_this_process("run-b", str(path))) is None


# -- the DynamoDB lock table under moto ------------------------------------------------------------

@pytest.fixture
def dynamodb(sandbox):
    client = boto3.client("dynamodb", region_name="us-east-1")
    make_table(client)
    return client


def test_dynamodb_lock_item_is_terraform_shaped_and_conditional(dynamodb):
    ident = lock_id("123456789012", "us-east-1")
    assert ident == "123456789012/us-east-1"
    mine, theirs = DynamoDBLock(dynamodb, TABLE, ident), DynamoDBLock(dynamodb, TABLE, ident)
    info = LockInfo.for_this_process("run-a", ident)
    with held(mine, info, timeout_seconds=0):
        item = dynamodb.get_item(TableName=TABLE, Key={"LockID": {"S": ident}})["Item"]
        stored = json.loads(item["Info"]["S"])
        assert {"ID", "Operation", "Who", "Version", "Created", "Path", "Host", "PID"} <= set(stored)
        assert stored["ID"] == "run-a" and stored["Operation"] == "apply" and stored["PID"] == os.getpid()
        with pytest.raises(LockHeld) as refused:
            with held(theirs, LockInfo.for_this_process("run-b", ident), timeout_seconds=0):
                pytest.fail("two holders")
        message = str(refused.value)
        assert "run run-a" in message and stored["Who"] in message and f"pid {os.getpid()}" in message
        assert f"reconciler force-unlock --lock-table {TABLE} --region us-east-1 run-a" in message
        assert refused.value.exit_code == 1
        theirs.release(LockInfo.for_this_process("run-b", ident))  # not theirs: nothing happens
        assert "Item" in dynamodb.get_item(TableName=TABLE, Key={"LockID": {"S": ident}})
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"LockID": {"S": ident}})


def test_dynamodb_lock_waits_for_the_timeout(dynamodb):
    ident = lock_id("123456789012", "us-east-1")
    mine = DynamoDBLock(dynamodb, TABLE, ident)
    info = LockInfo.for_this_process("run-a", ident)
    assert mine.try_acquire(info) is None
    releaser = threading.Timer(0.5, mine.release, args=(info,))
    releaser.start()
    waited = []
    started = time.monotonic()
    with held(DynamoDBLock(dynamodb, TABLE, ident), LockInfo.for_this_process("run-b", ident), timeout_seconds=10,
              on_wait=waited.append):
        assert time.monotonic() - started >= 0.4
    assert [h.ID for h in waited] == ["run-a"]


def test_dynamodb_force_unlock_removes_only_the_named_run(dynamodb):
    ident = lock_id("123456789012", "us-east-1")
    lock = DynamoDBLock(dynamodb, TABLE, ident)
    lock.try_acquire(LockInfo.for_this_process("run-a", ident))
    with pytest.raises(UserError, match="held by run run-a"):
        lock.force_unlock("run-x")
    assert lock.force_unlock("run-a").ID == "run-a"
    with pytest.raises(UserError, match="no lock is held"):
        lock.force_unlock("run-a")


def test_missing_lock_table_says_how_to_create_it(sandbox):
    client = boto3.client("dynamodb", region_name="us-east-1")
    lock = DynamoDBLock(client, "no-such-table", "123456789012/us-east-1")
    with pytest.raises(UserError, match="create-table --table-name no-such-table .*AttributeName=LockID"):
        lock.try_acquire(LockInfo.for_this_process("run-a", "x"))


def test_two_applies_in_threads_do_not_interleave(dynamodb, tmp_path, monkeypatch):
    """run_apply against "AWS" (moto): the first holds the table lock while it asks for
    confirmation; the second is refused naming it, or waits for it and then has nothing to do."""
    from reconciler.aws.connection import Target
    from reconciler.apply.run import ApplyRequest, run_apply

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XKS_ACCESS_KEY_ID", "AKIAXKSPROXYEXAMPLE2")
    monkeypatch.setenv("XKS_SECRET_ACCESS_KEY", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYxks00=")
    Path("m").mkdir()
    Path("m/p.yaml").write_text(xks_manifest(connection="disconnected", keys="[]"))
    target = Target(region="us-east-1")
    asked, go = threading.Event(), threading.Event()

    def confirm(_question: str) -> bool:
        asked.set()
        return go.wait(30)

    def request(**kw) -> ApplyRequest:
        # skip_preflight: the proxy of this "AWS" account (moto) does not exist; the test is about locks
        return ApplyRequest(args=["m"], target=target, lock_table=TABLE, journal_path="plans/journal.jsonl",
                            skip_preflight=True, **kw)

    outcome: dict = {}
    first = threading.Thread(target=lambda: outcome.setdefault("first", run_apply(
        request(stdin_isatty=lambda: True), print_plan=lambda p, f: None, confirm=confirm)))
    first.start()
    assert asked.wait(30)
    with pytest.raises(LockHeld, match="another apply holds the lock on 123456789012/us-east-1 in DynamoDB table"):
        run_apply(request(auto_approve=True), print_plan=lambda p, f: None, confirm=lambda q: True)
    second = threading.Thread(target=lambda: outcome.setdefault("second", run_apply(
        request(auto_approve=True, lock_timeout_seconds=30), print_plan=lambda p, f: None,
        confirm=lambda q: True)))
    second.start()
    time.sleep(0.5)
    assert second.is_alive()  # waiting for the lock
    go.set()
    first.join(30)
    second.join(30)
    assert outcome == {"first": 0, "second": 0}
    kms = boto3.client("kms", region_name="us-east-1")
    assert [s["CustomKeyStoreName"] for s in kms.describe_custom_key_stores()["CustomKeyStores"]] == ["payments-xks"]
    journal = [json.loads(line) for line in Path("plans/journal.jsonl").read_text().splitlines()]
    assert len([e for e in journal if e["event"] == "run-start"]) == 1  # the second had nothing to do
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"LockID": {"S": "123456789012/us-east-1"}})


@pytest.fixture
def served():
    with sandbox_server() as url:
        yield url


@pytest.mark.e2e
def test_lock_table_between_processes_and_force_unlock(served, tmp_path):
    """Two real processes against a served sandbox whose DynamoDB holds the lock table: the second
    is refused naming the first; a killed first run leaves its lock (as in Terraform), and
    force-unlock removes it."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=served, aws_access_key_id="x",
                            aws_secret_access_key="x")
    make_table(dynamodb)
    cli = ForkedCli(tmp_path)
    cli.env.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_ENDPOINT_URL_DYNAMODB": served})
    cli.write("m/payments.yaml", xks_manifest(connection="disconnected", keys="[]"))
    flags = ["--endpoint-url", served, "--region", "us-east-1", "--lock-table", TABLE, "--auto-approve"]

    first = cli.start("apply", *flags, "--format", "json", "m", stop_at=("end", 0))
    assert first.wait_stopped()
    run_id = json.loads(first.out.read_text().splitlines()[0])["run"]
    second = cli("apply", *flags, "m")
    assert second.code == 1
    assert "another apply holds the lock on 123456789012/us-east-1 in DynamoDB table reconciler-locks" in second.err
    assert f"run {run_id}" in second.err and f"pid {first.pid}" in second.err
    assert f"force-unlock --lock-table {TABLE} --region us-east-1 --endpoint-url {served} {run_id}" in second.err
    printed = shlex.split(second.err.split("remove the lock with: ", 1)[1].splitlines()[0])

    assert first.kill() == -9
    assert cli("apply", *flags, "m").code == 1  # the item stays: a killed run cannot release it
    wrong = cli("force-unlock", "--lock-table", TABLE, "--region", "us-east-1", "--endpoint-url", served,
                "not-the-run")
    assert wrong.code == 1 and "nothing was removed" in wrong.err
    unlocked = cli(*printed[1:])  # as printed, in the apply's environment
    assert unlocked.code == 0, unlocked.both
    assert run_id in unlocked.out
    done = cli("apply", *flags, "m")
    assert done.code == 0, done.both
    assert dynamodb.scan(TableName=TABLE)["Items"] == []  # released at the end

    # a run stopped with SIGTERM (a cancelled CI job) starts no other step and releases its lock
    cli.write("m/other.yaml", xks_manifest(name="other", endpoint="https://other.example.com",
                                           connection="disconnected", keys="[]"))
    stopped = cli.start("apply", *flags, "--format", "json", "m", stop_at=("end", 0))
    assert stopped.wait_stopped()
    assert len(dynamodb.scan(TableName=TABLE)["Items"]) == 1
    os.kill(stopped.pid, signal.SIGTERM)
    stopped.cont()
    run = stopped.wait()
    assert run.code == 1 and "not started: apply was interrupted" in run.out, run.both
    assert dynamodb.scan(TableName=TABLE)["Items"] == []


# -- without a lock table: the stale-plan check -------------------------------------------------

@pytest.mark.e2e
def test_a_saved_plan_made_stale_by_another_run_is_refused(tmp_path):
    cli = ForkedCli(tmp_path)
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("plan", "--sandbox", "--out", "plans/a.json", "m").code == 2
    assert cli("plan", "--sandbox", "--out", "plans/b.json", "m").code == 2
    assert cli("apply", "--sandbox", "plans/a.json").code == 0  # another run applies its plan first
    stale = cli("apply", "--sandbox", "plans/b.json")
    assert stale.code == 1
    assert "live state changed since plans/b.json was made" in stale.err and "nothing was changed" in stale.err
    with cli.kms() as kms:
        assert len(kms.describe_custom_key_stores()["CustomKeyStores"]) == 1
        assert len(kms.list_keys()["Keys"]) == 2
