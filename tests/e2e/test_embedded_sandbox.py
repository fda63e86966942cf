"""The embedded sandbox: one emulated account shared by separate processes through a directory."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_a_sandbox_dir_that_cannot_be_created_is_one_line(tmp_path, monkeypatch):
    from tests.e2e.helpers import SECRET

    monkeypatch.setenv("PROXY_SECRET", SECRET)  # the commands run in processes with this environment
    (tmp_path / "notyaml.txt").write_text("x")
    d = str(tmp_path / "notyaml.txt" / "sb")
    manifests = str(Path(__file__).parents[2] / "manifests")
    proxy = tmp_path / "proxy.yaml"
    proxy.write_text("uriPath: /kms/xks/v1\ncredentials:\n  - accessKeyId: AKIAXKSPROXYEXAMPLE2\n"
                     "    secretAccessKey: {fromEnv: PROXY_SECRET}\nkeys:\n  - id: k\n")
    for args in (["sandbox", "init", "--sandbox-dir", d, manifests], ["status", "--sandbox", "--sandbox-dir", d],
                 ["sandbox", "advance", "1d", "--sandbox-dir", d], ["export", "--sandbox", "--sandbox-dir", d],
                 ["sandbox", "xks-proxy", "serve", "--config", str(proxy), "--port", "0", "--sandbox-dir", d]):
        run = reconciler(*args)
        assert run.returncode == 1, run.stderr
        assert run.stderr == (f"Error: cannot use {d} as the sandbox directory ({tmp_path / 'notyaml.txt'} is a file, "
                              "not a directory); pass a directory that can be created and written with --sandbox-dir "
                              "(or RECONCILER_SANDBOX_DIR)\n"), args


def test_an_env_file_that_cannot_be_written_is_one_line(tmp_path):
    (tmp_path / "notyaml.txt").write_text("x")
    manifests = str(Path(__file__).parents[2] / "manifests")
    target = tmp_path / "notyaml.txt" / "env.sh"
    run = reconciler("sandbox", "init", "--sandbox-dir", str(tmp_path / "sb"), "--env-file", str(target), manifests)
    assert run.returncode == 1
    assert run.stderr == (f"Error: cannot write {target} ({tmp_path / 'notyaml.txt'} is not a directory); pass another "
                          "--env-file\n")


def test_a_sandbox_dir_whose_state_cannot_be_written_is_one_line(tmp_path, monkeypatch):
    import os

    import boto3

    from reconciler.sandbox.embedded import EmbeddedSandbox, SandboxStateError

    real_open = os.open

    def full_disk(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    with EmbeddedSandbox(tmp_path / "sb"):
        monkeypatch.setattr(os, "open", full_disk)
        kms = boto3.client("kms", region_name="us-east-1")
        with pytest.raises(SandboxStateError, match=r"sb as the sandbox directory \(No space left on device\)"):
            kms.create_key()
    assert sorted(p.name for p in (tmp_path / "sb").iterdir()) == ["state.lock"]
