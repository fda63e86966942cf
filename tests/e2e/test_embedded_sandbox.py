"""The embedded sandbox: one emulated account shared by separate processes through a directory."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.e2e

CREATE_AND_SCHEDULE = textwrap.dedent("""
    import json, sys
    import boto3
    from reconciler.sandbox.embedded import EmbeddedSandbox
    with EmbeddedSandbox(sys.argv[1]):
        kms = boto3.client("kms", region_name="us-east-1")
        key = kms.create_key(Description="first process")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/short-lived", TargetKeyId=key)
        date = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)["DeletionDate"]
        print(json.dumps({"key": key, "date": str(date)}))
""")

DESCRIBE = textwrap.dedent("""
    import json, sys
    import boto3
    from reconciler.sandbox.embedded import EmbeddedSandbox
    with EmbeddedSandbox(sys.argv[1]):
        kms = boto3.client("kms", region_name="us-east-1")
        try:
            meta = kms.describe_key(KeyId=sys.argv[2])["KeyMetadata"]
            state = meta["KeyState"]
        except kms.exceptions.NotFoundException:
            state = "gone"
        aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == "alias/short-lived"]
        print(json.dumps({"state": state, "aliases": aliases}))
""")


def py(code: str, *args: str) -> dict:
    import json

    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def reconciler(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=120)


def test_state_written_by_one_process_is_read_by_the_next_and_advance_purges(tmp_path):
    d = str(tmp_path / "sb")
    created = py(CREATE_AND_SCHEDULE, d)
    assert py(DESCRIBE, d, created["key"]) == {"state": "PendingDeletion", "aliases": ["alias/short-lived"]}
    advanced = reconciler("sandbox", "advance", "6d", "--sandbox-dir", d)
    assert advanced.returncode == 0, advanced.stderr
    assert py(DESCRIBE, d, created["key"])["state"] == "PendingDeletion"  # 6 of 7 days
    assert reconciler("sandbox", "advance", "1d1h", "--sandbox-dir", d).returncode == 0
    assert py(DESCRIBE, d, created["key"]) == {"state": "gone", "aliases": []}


def test_reset_empties_the_sandbox(tmp_path):
    d = str(tmp_path / "sb")
    created = py(CREATE_AND_SCHEDULE, d)
    assert reconciler("sandbox", "reset", "--sandbox-dir", d).returncode == 0
    assert py(DESCRIBE, d, created["key"])["state"] == "gone"


def test_faults_persist_in_the_sandbox_dir(tmp_path):
    d = str(tmp_path / "sb")
    set_fault = reconciler("sandbox", "fault", "--sandbox-dir", d, "--store", "s1", "--connection-error",
                           "INVALID_CREDENTIALS", "--quotas", "on", "--quota", "CreateKey=2")
    assert set_fault.returncode == 0, set_fault.stderr
    status = reconciler("sandbox", "status", "--sandbox-dir", d)
    assert '"s1": "INVALID_CREDENTIALS"' in status.stdout and '"CreateKey": 2.0' in status.stdout
    cleared = reconciler("sandbox", "fault", "--sandbox-dir", d, "--clear")
    assert '"connectionErrors": {}' in cleared.stdout


def test_bad_duration_and_corrupt_state_are_clear_errors(tmp_path):
    d = tmp_path / "sb"
    bad = reconciler("sandbox", "advance", "eight days", "--sandbox-dir", str(d))
    assert bad.returncode == 1 and "invalid duration" in bad.stderr and "Traceback" not in bad.stderr
    d.mkdir()
    (d / "state.pickle").write_bytes(b"not a pickle")
    broken = reconciler("sandbox", "advance", "1d", "--sandbox-dir", str(d))
    assert broken.returncode == 1
    assert "sandbox reset" in broken.stderr and "Traceback" not in broken.stderr
