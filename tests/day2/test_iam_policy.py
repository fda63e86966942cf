"""``reconciler iam-policy``: the policy of each mode lists every call that mode makes, and no more.

Plan and apply run in this process against the emulator through every kind of change (create
of all three kinds of store, updates online and offline, alias moves, a rescue, a FAILED
connection and its repair, lost responses, a decommission across a clock advance), while every
AWS call is recorded. Each recorded call must be allowed by the policy of its mode; plan's
calls must all be reads; and every permission the table says the tool's own calls need must
have been seen, so the policy holds nothing the tool does not use.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from reconciler.aws.permissions import PERMISSIONS, actions_for, permissions_for, policy, Scope
from tests.day2.helpers import REPO, Sandbox, sourced

READ_PREFIXES = ("Describe", "List", "Get", "Lookup")  # cloudtrail:LookupEvents reads


class Recorder:
    """Every AWS API call made through botocore, as 'service:Operation', by the mode it ran in."""

    def __init__(self) -> None:
        self.calls: dict[str, set[str]] = defaultdict(set)
        self.mode: str | None = None

    def hook(self, client, operation_name, api_params):  # the patched BaseClient._make_api_call
        if self.mode is not None:
            prefix = client.meta.service_model.signing_name
            self.calls[self.mode].add(f"{prefix}:{operation_name}")
        return self.original(client, operation_name, api_params)

    @contextmanager
    def recording(self, mode: str):
        self.mode = mode
        try:
            yield
        finally:
            self.mode = None


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    from botocore.client import BaseClient

    rec = Recorder()
    rec.original = BaseClient._make_api_call
    monkeypatch.setattr(BaseClient, "_make_api_call", lambda self, op, params: rec.hook(self, op, params))
    return rec


class Story:
    def __init__(self, sb: Sandbox, rec: Recorder) -> None:
        from reconciler.sandbox.fixtures import SANDBOX_VALUES

        self.sb, self.rec = sb, rec
        self.dir = sb.workdir / "m"
        shutil.copytree(REPO / "manifests", self.dir)
        init = sb.run("sandbox", "init", "m")  # the CloudHSM cluster, the VPC endpoint service, env.sh
        assert init.code == 0, init.both
        sb.env.update(sourced(sb.directory / "env.sh"))
        self.demo_values = SANDBOX_VALUES

    def edit(self, name: str, change) -> None:
        path = self.dir / name
        data = yaml.safe_load(path.read_text())
        change(data["spec"])
        path.write_text(yaml.safe_dump(data, sort_keys=False))

    def plan(self, *extra: str) -> int:
        with self.rec.recording("plan"):
            run = self.sb.run("plan", "--sandbox", "m", *extra)
        assert run.code in (0, 2), run.both
        return run.code

    def apply(self, *extra: str, expect: tuple[int, ...] = (0,)) -> str:
        with self.rec.recording("apply"):
            run = self.sb.run("apply", "--sandbox", "--auto-approve", "m", *extra)
        assert run.code in expect, run.both
        return run.out


def _keys(spec: dict) -> dict[str, dict]:
    return {k.get("xksKeyId") or k["alias"]: k for k in spec["keys"]}


def test_every_call_of_plan_and_apply_is_in_the_policy_of_its_mode(sb: Sandbox, recorder: Recorder):
    story = Story(sb, recorder)
    story.edit("payments-xks.yaml", lambda s: s.update(account="123456789012"))  # the account guard

    # create all three kinds of store
    assert story.plan() == 2
    story.apply()

    # updates: online (uriPath, key description, tags, enabled) and alias moves between keys
    def update_payments(spec):
        spec["xks"]["uriPath"] = "/v2/kms/xks/v1"
        keys = _keys(spec)
        keys["payments-key-0001"].update(description="changed", tags={"team": "payments", "new": "tag"})
        keys["payments-key-0002"].update(enabled=False, tags={})
        keys["payments-key-0001"]["alias"], keys["payments-key-0002"]["alias"] = (
            keys["payments-key-0002"]["alias"], keys["payments-key-0001"]["alias"])
    story.edit("payments-xks.yaml", update_payments)
    story.apply()
    # an offline update: disconnect, update the endpoint, reconnect
    story.edit("payments-xks.yaml", lambda s: s["xks"].update(uriEndpoint="https://xks2.payments.example.com"))
    story.apply()
    # a new key, created disabled
    story.edit("cloudhsm.yaml", lambda s: s["keys"].append({"alias": "alias/records-extra", "enabled": False}))
    story.apply()

    # rescue: a declared key scheduled for deletion by someone else
    with sb.kms() as kms:
        target = next(a["TargetKeyId"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/ledger-entries")
        kms.schedule_key_deletion(KeyId=target, PendingWindowInDays=7)
    assert "cancel_key_deletion" in story.apply()

    # a connection that FAILS, then its repair (with the credential re-sent for INVALID_CREDENTIALS)
    story.edit("vpc-xks.yaml", lambda s: s.update(connection="disconnected"))
    story.apply()
    sb.fault(store="ledger-vpc-xks", connection_error="INVALID_CREDENTIALS")
    story.edit("vpc-xks.yaml", lambda s: s.update(connection="connected"))
    story.apply(expect=(1,))
    sb.fault(store="ledger-vpc-xks", connection_error="NONE")
    assert "update_store" in story.apply()

    # lost responses: creates retried after looking for what they may have made
    shutil.copy(story.dir / "payments-xks.yaml", story.dir / "orders-xks.yaml")

    def orders(spec):
        spec.pop("account")
        spec["xks"]["uriEndpoint"] = "https://xks.orders.example.com"
        for i, key in enumerate(spec["keys"]):
            key.update(xksKeyId=f"orders-key-{i}", alias=f"alias/orders-{i}")
    story.edit("orders-xks.yaml", orders)
    data = yaml.safe_load((story.dir / "orders-xks.yaml").read_text())
    data["metadata"]["name"] = "orders-xks"
    (story.dir / "orders-xks.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    sb.fault(lost_response_rate=0.5, seed=7)
    for _ in range(6):
        if story.plan() == 0:
            break
        story.apply(expect=(0, 1))
    sb.fault(clear=True)
    assert story.plan() == 0

    # decommission across the deletion window
    story.edit("payments-xks.yaml", lambda s: s.update(state="absent"))
    story.apply("--allow-destroy", expect=(2,))
    sb.advance(8 * 86400)
    story.apply("--allow-destroy")
    assert story.plan() == 0

    # status and export need only plan's permissions
    with recorder.recording("plan"):
        assert sb.run("status", "--sandbox", "m").code == 0
        assert sb.run("export", "--sandbox").code == 0

    recorded = recorder.calls
    for mode in ("plan", "apply"):
        allowed = actions_for(mode)
        missing = sorted(recorded[mode] - allowed)
        assert not missing, f"'reconciler {mode}' called {missing}, which its IAM policy does not allow"
    assert all(call.split(":")[1].startswith(READ_PREFIXES) for call in recorded["plan"]), recorded["plan"]
    assert all(a.split(":")[1].startswith(READ_PREFIXES) for a in actions_for("plan"))
    # least privilege: every permission for a call of the tool was needed by some call
    seen = recorded["plan"] | recorded["apply"]
    unused = sorted(p.action for p in permissions_for("apply") if p.recorded and p.action not in seen)
    assert not unused, f"the policy allows {unused}, which no plan or apply made"


def test_the_apply_lock_table_calls_are_in_the_policy_with_lock_table(sandbox, recorder: Recorder, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch):
    """--lock-table (real AWS mode, DynamoDB on moto): the lock's calls need --lock-table's statement."""
    import boto3
    from click.testing import CliRunner

    from reconciler.cli import cli

    boto3.client("dynamodb", region_name="us-east-1").create_table(
        TableName="reconciler-locks", AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    (tmp_path / "gone.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: KeyStore\nmetadata: {name: gone}\n"
        "spec: {region: us-east-1, type: EXTERNAL_KEY_STORE, state: absent}\n")
    monkeypatch.chdir(tmp_path)
    with recorder.recording("apply"):
        result = CliRunner().invoke(cli, ["apply", "--auto-approve", "--lock-table", "reconciler-locks", "gone.yaml"])
    assert result.exit_code == 0, result.output
    calls = recorder.calls["apply"]
    assert {"dynamodb:PutItem", "dynamodb:DeleteItem"} <= calls
    assert not calls - actions_for("apply", lock_table="reconciler-locks")
    assert {c for c in calls if c.startswith("dynamodb:")} - actions_for("apply") == {"dynamodb:PutItem",
                                                                                    "dynamodb:DeleteItem"}


def test_policy_document_scopes_key_operations_and_conditions_writes():
    doc = policy("apply", Scope(region="eu-west-1", account="111122223333", lock_table="locks"))
    assert doc["Version"] == "2012-10-17"
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert by_sid["ReadCustomKeyStores"]["Resource"] == "*"
    assert by_sid["ReadKeys"]["Resource"] == "arn:aws:kms:eu-west-1:111122223333:key/*"
    create = by_sid["CreateKeysInCustomKeyStores"]
    assert create["Action"] == ["kms:CreateKey"] and create["Resource"] == "*"
    assert create["Condition"] == {"StringEquals": {"kms:KeyOrigin": ["AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"]}}
    writes = by_sid["ManageKeysInCustomKeyStores"]
    assert "kms:ScheduleKeyDeletion" in writes["Action"] and writes["Condition"] == create["Condition"]
    assert by_sid["ManageAliases"]["Resource"] == ["arn:aws:kms:eu-west-1:111122223333:alias/*",
                                                   "arn:aws:kms:eu-west-1:111122223333:key/*"]
    assert by_sid["ApplyLock"]["Resource"] == "arn:aws:dynamodb:eu-west-1:111122223333:table/locks"
    assert "kms:*" not in json.dumps(doc)
    plan_doc = policy("plan")
    assert [s["Sid"] for s in plan_doc["Statement"]] == ["ReadCustomKeyStores", "ReadKeys", "ReadKeyUse",
                                                      "ReadCallerIdentity"]
    assert by_sid["ReadKeyUse"] == {"Sid": "ReadKeyUse", "Effect": "Allow", "Action": ["cloudtrail:LookupEvents"],
                                    "Resource": "*"}
    # every action appears once
    actions = [a for s in doc["Statement"] for a in s["Action"]]
    assert len(actions) == len(set(actions)) == len(PERMISSIONS) + 3


def test_iam_policy_command(sb: Sandbox):
    run = sb.run("iam-policy", "--mode", "plan")
    assert run.code == 0
    assert json.loads(run.out) == policy("plan")
    assert "pass --region and --account" in run.err
    scoped = sb.run("iam-policy", "--region", "us-east-1", "--account", "123456789012", "--lock-table", "locks")
    doc = json.loads(scoped.out)
    assert any(s["Sid"] == "ApplyLock" for s in doc["Statement"]) and scoped.err == ""
    text = sb.run("iam-policy", "--mode", "apply", "--format", "text")
    assert "kms:CancelKeyDeletion" in text.out and "rescue" in text.out
    assert sb.run("iam-policy", "--account", "12").code == 1
    assert sb.run("iam-policy", "--mode", "plan", "--lock-table", "x").code == 1


FLEET_CONFIG = str(REPO / "examples" / "fleet" / "reconciler.yaml")
PLAN_ROLE, APPLY_ROLE = "arn:aws:iam::999999999999:role/reconciler-ci-plan", "arn:aws:iam::999999999999:role/reconciler-ci-apply"


def test_every_trust_principal_is_trusted(sb: Sandbox):
    """--trust-principal is repeatable: the plan job's and the apply job's roles are both trusted (the
    last one alone was)."""
    run = sb.run("iam-policy", "--config", FLEET_CONFIG, "--trust-principal", PLAN_ROLE, "--trust-principal", APPLY_ROLE)
    assert run.code == 0 and run.err == "", run.both
    accounts = json.loads(run.out)["accounts"]
    assert len(accounts) == 2
    for entry in accounts.values():
        [statement] = entry["trustPolicy"]["Statement"]
        assert statement["Principal"] == {"AWS": [PLAN_ROLE, APPLY_ROLE]}
    one = json.loads(sb.run("iam-policy", "--config", FLEET_CONFIG, "--trust-principal", APPLY_ROLE).out)
    assert {e["trustPolicy"]["Statement"][0]["Principal"]["AWS"] for e in one["accounts"].values()} == {APPLY_ROLE}


@pytest.mark.parametrize("principal", [
    "arn:aws:iam::999999999999:role/reconciler-ci", "arn:aws:iam::999999999999:role/ci/github/reconciler",
    "arn:aws:iam::999999999999:user/ci-bot", "arn:aws:iam::999999999999:root", "999999999999",
])
def test_a_trust_principal_may_be_a_role_a_user_a_root_or_an_account(sb: Sandbox, principal: str):
    run = sb.run("iam-policy", "--config", FLEET_CONFIG, "--trust-principal", principal)
    assert run.code == 0, run.both
    assert {e["trustPolicy"]["Statement"][0]["Principal"]["AWS"]
            for e in json.loads(run.out)["accounts"].values()} == {principal}


@pytest.mark.parametrize("args,message", [
    (["--config", FLEET_CONFIG, "--trust-principal", "bad"], "Invalid value for '--trust-principal': 'bad' is not an IAM principal"),
    (["--config", FLEET_CONFIG, "--trust-principal", APPLY_ROLE, "--trust-principal", "arn:aws:iam::999999999999:group/ci"],
     "'arn:aws:iam::999999999999:group/ci' is not an IAM principal"),
    (["--config", FLEET_CONFIG, "--trust-principal", "arn:aws:iam::9999:role/ci"], "is not an IAM principal"),
    (["--config", FLEET_CONFIG, "--trust-principal", "arn:aws:iam::999999999999:role/"], "is not an IAM principal"),
    (["--config", FLEET_CONFIG, "--trust-principal", "arn:aws:sts::999999999999:assumed-role/ci/s"], "is not an IAM principal"),
    (["--config", FLEET_CONFIG, "--trust-principal", "arn:aws-cn:iam::999999999999:role/ci"],
     "is in partition aws-cn, and the roles are in aws (--partition)"),
    (["--trust-principal", APPLY_ROLE], "--trust-principal fills in the trust policies of the roles a fleet's "
                                        "reconciler.yaml names: add --config FILE"),
    (["--partition", "foo"], "Invalid value for '--partition': 'foo' is not one of 'aws', 'aws-cn', 'aws-us-gov'"),
    (["--config", FLEET_CONFIG, "--partition", "foo"], "Invalid value for '--partition'"),
    (["--region", "nowhere-1"], "--region 'nowhere-1' must be an AWS region"),
    (["--config", FLEET_CONFIG, "--region", "us-east-7"], "--region 'us-east-7' must be an AWS region"),
])
def test_iam_policy_refuses_what_iam_would_reject(sb: Sandbox, args: list[str], message: str):
    """A bad principal, partition or region is refused with one line and exit 1 (it printed a policy
    IAM rejects, or one scoped to no region), and --trust-principal without --config too (it was
    silently ignored)."""
    run = sb.run("iam-policy", *args)
    assert run.code == 1 and run.out == "", run.both
    assert run.err.startswith("Error: ") and message in run.err and len(run.err.splitlines()) == 1, run.err


def test_iam_policy_accepts_every_partition_and_a_known_region(sb: Sandbox):
    for partition, region in (("aws", "eu-west-1"), ("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")):
        run = sb.run("iam-policy", "--partition", partition, "--region", region, "--account", "123456789012")
        assert run.code == 0, run.both
        assert f"arn:{partition}:kms:{region}:123456789012:" in run.out
