"""Every command the tool prints as a next step works when pasted: it carries the connection flags
of the command that printed it, quoted for the shell."""

from __future__ import annotations

import re
import shlex
import shutil

import pytest

from tests.day2.helpers import REPO, Sandbox, sourced

NO_DIR = {"RECONCILER_SANDBOX_DIR": None}  # the flag, not the variable, names the sandbox


def hint(text: str, marker: str) -> list[str]:
    """The words of the command printed after ``marker``."""
    line = next(line for line in text.splitlines() if marker in line)
    words = shlex.split(line.split(marker, 1)[1])
    assert words[0] == "reconciler", line
    return words[1:]


@pytest.fixture
def examples(sb: Sandbox) -> Sandbox:
    """The example manifests in a sandbox directory with a space in its name, set up by init."""
    shutil.copytree(REPO / "manifests", sb.workdir / "manifests")
    sb.box = "my sandbox"  # type: ignore[attr-defined]
    init = sb.run("sandbox", "init", "--sandbox-dir", sb.box, env=NO_DIR)
    assert init.code == 0, init.both
    assert "reconciler plan --sandbox --sandbox-dir 'my sandbox' manifests" in init.out
    sb.env.update(sourced(sb.workdir / "my sandbox" / "env.sh"))
    return sb


def test_the_apply_printed_after_plan_out_carries_the_sandbox_flags(examples: Sandbox):
    sb = examples
    run = sb.run("plan", "--sandbox", "--sandbox-dir", sb.box, "manifests", "--out", "plans/plan.json", env=NO_DIR)
    assert run.code == 2, run.both
    command = hint(run.err, "apply it with: ")
    assert command == ["apply", "--sandbox", "--sandbox-dir", "my sandbox", "plans/plan.json"]
    applied = sb.run(*command, env=NO_DIR)
    assert applied.code == 0, applied.both
    again = sb.run("plan", "--sandbox", "--sandbox-dir", sb.box, "manifests", "--out", "plans/again.json",
                   env=NO_DIR)
    assert again.code == 0 and "Saved the plan to plans/again.json (no changes to apply)" in again.err


def test_a_plan_file_named_like_an_option_is_printed_as_a_path(examples: Sandbox):
    sb = examples
    run = sb.run("plan", "--sandbox", "--sandbox-dir", sb.box, "manifests", "--out=-p.json", env=NO_DIR)
    assert run.code == 2, run.both
    command = hint(run.err, "apply it with: ")
    assert command[-1] == "./-p.json"  # '-p.json' would be read as the option -p
    assert sb.run(*command, env=NO_DIR).code == 0


def test_a_destructive_plan_prints_its_apply_with_allow_destroy(examples: Sandbox):
    sb = examples
    assert sb.run("apply", "--sandbox", "--sandbox-dir", sb.box, "--auto-approve", "manifests", env=NO_DIR).code == 0
    path = sb.workdir / "manifests" / "payments-xks.yaml"
    path.write_text(path.read_text().replace("state: present", "state: absent"))
    run = sb.run("plan", "--sandbox", "--sandbox-dir", sb.box, "manifests", "--out", "plans/down.json", env=NO_DIR)
    assert "it deletes keys or stores: review it, then apply it with: " in run.err
    command = hint(run.err, "then apply it with: ")
    assert command == ["apply", "--sandbox", "--sandbox-dir", "my sandbox", "--allow-destroy", "plans/down.json"]
    assert sb.run(*command, env=NO_DIR).code == 2  # keys pending deletion: the store's deletion is deferred


def test_the_plan_printed_after_export_carries_the_flags_and_finds_no_changes(examples: Sandbox):
    sb = examples
    assert sb.run("apply", "--sandbox", "--sandbox-dir", sb.box, "--auto-approve", "manifests", env=NO_DIR).code == 0
    run = sb.run("export", "--sandbox", "--sandbox-dir", sb.box, "--out", "adopted", env=NO_DIR)
    assert run.code == 0, run.both
    assert "holds manifests already" not in run.err
    command = hint(run.err, "Check it with: ")
    assert command == ["plan", "--sandbox", "--sandbox-dir", "my sandbox", "adopted"]
    assert sb.run(*command, env=NO_DIR).code == 0


def test_exporting_into_the_manifests_directory_is_flagged(examples: Sandbox):
    sb = examples
    assert sb.run("apply", "--sandbox", "--sandbox-dir", sb.box, "--auto-approve", "manifests", env=NO_DIR).code == 0
    run = sb.run("export", "--sandbox", "--sandbox-dir", sb.box, "--out", "manifests/adopted", env=NO_DIR)
    assert run.code == 0, run.both
    assert re.search(r"Note: .*manifests holds manifests already: planning it would declare the exported stores "
                     r"twice; export outside it \(e\.g\. --out adopted/\)", run.err)


def test_a_missing_plan_file_is_named_as_such(sb: Sandbox):
    run = sb.run("apply", "--sandbox", "nope.json")
    assert run.code == 1
    assert run.err == "Error: nope.json: no such plan file\n"


def test_the_force_unlock_printed_for_a_held_lock_carries_the_profile():
    from reconciler.apply.lock import DynamoDBLock, LockInfo

    class Meta:
        region_name = "eu-west-1"

    class Client:
        meta = Meta()

    lock = DynamoDBLock(Client(), "locks table", "111122223333/eu-west-1", profile="kms admin")
    words = hint(lock.unlock_hint(LockInfo(ID="run-1", Path="x")), "remove the lock with: ")
    assert words == ["force-unlock", "--lock-table", "locks table", "--region", "eu-west-1", "--profile", "kms admin",
                     "run-1"]


def test_no_credentials_suggests_sandbox_only_where_it_is_accepted(sb: Sandbox, tmp_path):
    env = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}
    plan = sb.run("status", "--region", "us-east-1", env=env)
    assert plan.code == 1 and "or use --sandbox" in plan.err
    unlock = sb.run("force-unlock", "--lock-table", "t", "--region", "us-east-1", "run-1", env=env)
    assert unlock.code == 1 and "no AWS credentials found" in unlock.err and "--sandbox" not in unlock.err
