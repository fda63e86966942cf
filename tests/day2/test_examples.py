"""Every example in manifests/ is validated and planned against the sandbox, as a user would: after
`reconciler sandbox init` and its env file."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.day2.helpers import REPO, Sandbox, sourced

EXAMPLES = sorted(p.relative_to(REPO / "manifests").as_posix() for p in (REPO / "manifests").rglob("*.yaml"))

# What planning each example alone on an account that has nothing yet must propose.
EXPECTED_FIRST_PLAN = {
    "payments-xks.yaml": ["create_store", "connect_store", "create_key", "create_alias", "create_key", "create_alias"],
    "vpc-xks.yaml": ["create_store", "connect_store", "create_key", "create_alias"],
    "cloudhsm.yaml": ["create_store", "connect_store", "create_key", "create_alias", "create_key", "create_alias"],
    "decommission/legacy-xks.yaml": [],  # nothing to decommission: the store does not exist
}


@pytest.fixture
def examples(sb: Sandbox) -> Sandbox:
    shutil.copytree(REPO / "manifests", sb.workdir / "manifests")
    for name in ("XKS_ACCESS_KEY_ID", "XKS_SECRET_ACCESS_KEY", "KMSUSER_PASSWORD"):
        sb.env.pop(name)  # only what init provides
    init = sb.run("sandbox", "init")
    assert init.code == 0, init.both
    assert ". " in init.out and "reconciler plan --sandbox manifests" in init.out
    sb.env.update(sourced(sb.directory / "env.sh"))
    return sb


def test_init_seeds_what_the_examples_need_once_and_writes_a_private_env_file(examples: Sandbox):
    env_file = examples.directory / "env.sh"
    assert env_file.stat().st_mode & 0o777 == 0o600
    assert set(sourced(env_file)) == {"XKS_ACCESS_KEY_ID", "XKS_SECRET_ACCESS_KEY", "LEDGER_XKS_ACCESS_KEY_ID",
                                      "LEDGER_XKS_SECRET_ACCESS_KEY", "KMSUSER_PASSWORD"}
    again = examples.run("sandbox", "init", "manifests")
    assert again.code == 0, again.both
    assert "cluster-jxhlf7644ne (us-east-1, for records-cloudhsm): exists already" in again.out
    for value in sourced(env_file).values():
        assert value not in again.both  # names only, never the values
    twice = examples.run("sandbox", "seed-cluster", "--cluster-id", "cluster-jxhlf7644ne")
    assert twice.code == 0 and "exists already" in twice.err and "Traceback" not in twice.both


def test_the_expectations_cover_every_example():
    assert sorted(EXPECTED_FIRST_PLAN) == EXAMPLES


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_validates_and_plans(examples: Sandbox, name: str):
    sb = examples
    valid = sb.run("validate", "--check-secrets", f"manifests/{name}")
    assert valid.code == 0, valid.both
    run = sb.run("plan", "--sandbox", "--format", "json", f"manifests/{name}")
    expected = EXPECTED_FIRST_PLAN[name]
    assert run.code == (2 if expected else 0), run.both
    plan = json.loads(run.out)
    assert [s["action"] for s in plan["steps"]] == expected
    assert not [f for f in plan["findings"] if f["kind"] == "refused"]


def test_all_examples_together_apply_and_converge(examples: Sandbox):
    sb = examples
    assert sb.run("validate", "manifests").code == 0
    assert sb.run("plan", "--sandbox", "manifests").code == 2
    applied = sb.run("apply", "--sandbox", "--auto-approve", "manifests")
    assert applied.code == 0, applied.both
    assert sb.run("plan", "--sandbox", "manifests").code == 0


def test_the_decommission_example_on_a_store_that_exists(examples: Sandbox):
    """legacy-xks.yaml against an account where legacy-xks exists, with a key."""
    sb = examples
    legacy = (sb.workdir / "manifests" / "payments-xks.yaml").read_text()
    legacy = legacy.replace("name: payments-xks", "name: legacy-xks").replace("payments-key", "legacy-key") \
        .replace("alias/payments", "alias/legacy").replace("xks.payments.", "xks.legacy.")
    sb.write("present/legacy.yaml", legacy)
    assert sb.run("apply", "--sandbox", "--auto-approve", "present").code == 0
    run = sb.run("plan", "--sandbox", "--format", "json", "manifests/decommission/legacy-xks.yaml")
    assert run.code == 2, run.both
    steps = json.loads(run.out)["steps"]
    assert [s["action"] for s in steps] == ["schedule_key_deletion", "schedule_key_deletion", "disconnect_store",
                                           "delete_store"]
    assert all(s["params"]["pendingWindowInDays"] == 7 for s in steps[:2])
    assert steps[-1]["deferredUntil"]
