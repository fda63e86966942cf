"""The README's main-job command: `reconciler demo` tells the whole story, in under a minute."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.day2.helpers import REPO
from tests.e2e.helpers import clean_env

pytestmark = pytest.mark.e2e


def test_demo_runs_the_whole_story_on_the_sandbox_in_under_a_minute(tmp_path: Path):
    env = clean_env("GITHUB_")
    env["NO_COLOR"] = "1"
    started = time.monotonic()
    elsewhere = tmp_path / "elsewhere"  # any directory: the examples ship with the package
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-m", "reconciler", "demo", "--workspace", str(tmp_path / "ws")],
                          cwd=elsewhere, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    assert elapsed < 60, f"the demo took {elapsed:.0f}s"
    # the story, in order: plan, apply, decommission with its deferred delete, clock, final apply
    milestones = [
        "$ reconciler sandbox init manifests", "CloudHSM cluster cluster-jxhlf7644ne", "Wrote ",
        # a real proxy; a wrong uriPath caught by preflight before KMS is called; the fix
        "$ reconciler sandbox xks-proxy serve --config xks-proxy.yaml --hostname xks.payments.example.com",
        "Registered xks.payments.example.com",
        "$ reconciler preflight --sandbox manifests", "[FAIL] payments-xks: health:",
        "XksProxyInvalidConfigurationException / XKS_PROXY_INVALID_CONFIGURATION", "(exit 1)",
        "$ reconciler preflight --sandbox manifests", "[ok] payments-xks / payments-key-0002: key:", "(exit 0)",
        "$ reconciler plan --sandbox manifests", "(exit 2)",
        "$ reconciler apply --sandbox --auto-approve manifests", "Converged: the live state matches the manifests.",
        "No changes. The live state matches the manifests.",
        # a credential rotation with two credentials live at once
        "Credential rotation", "the new credential is accepted by the proxy before the update is sent",
        "Converged: the live state matches the manifests.",
        "Decommission: payments-xks.yaml now says 'state: absent'",
        "--allow-destroy was not given; nothing was changed", "(exit 1)",
        "Deferred steps remain: re-run after", "(exit 2)",
        "PendingDeletion",
        "$ reconciler sandbox advance 8d", "Sandbox clock is now",
        "payments-xks:delete_store: deleted cks-", "Converged: the live state matches the manifests.",
        "No changes. The live state matches the manifests.", "Demo complete",
    ]
    position = 0
    for milestone in milestones:
        found = out.find(milestone, position)
        assert found >= 0, f"missing, or out of order: {milestone!r}"
        position = found + len(milestone)
    # the demo worked on a copy: the repository's manifests are untouched
    assert "state: present" in (REPO / "manifests" / "payments-xks.yaml").read_text()
    assert (tmp_path / "ws" / "manifests" / "payments-xks.yaml").read_text().count("state: absent") == 1
    import re

    secrets = re.findall(r"export XKS_SECRET_ACCESS_KEY=(\S+)", (tmp_path / "ws/.reconciler/sandbox/env.sh").read_text())
    assert secrets and all(secret.strip("'\"") not in out for secret in secrets)


def test_demo_decommissions_any_example_with_its_own_quarantine_and_waiting_period(tmp_path: Path):
    """`--decommission` with another manifest: the clock moves past that manifest's quarantine and
    waiting period (it moved 8 days whatever the manifest said, and a 30-day store failed)."""
    manifests = tmp_path / "m"
    shutil.copytree(REPO / "manifests", manifests)
    cloudhsm = manifests / "cloudhsm.yaml"
    cloudhsm.write_text(cloudhsm.read_text().replace("pendingWindowDays: 30", "pendingWindowDays: 30\n    quarantineDays: 3"))
    assert "quarantineDays: 3" in cloudhsm.read_text()
    env = clean_env("GITHUB_")
    env["NO_COLOR"] = "1"
    proc = subprocess.run([sys.executable, "-m", "reconciler", "demo", "--manifests", str(manifests), "--workspace",
                           str(tmp_path / "ws"), "--decommission", "cloudhsm.yaml"], cwd=tmp_path, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:]
    position = 0
    for milestone in ("$ reconciler sandbox advance 4d", "past the 3-day quarantine",
                      "$ reconciler sandbox advance 31d", "past the 30-day waiting period",
                      "records-cloudhsm:delete_store: deleted cks-", "Demo complete"):
        found = proc.stdout.find(milestone, position)
        assert found >= 0, f"missing, or out of order: {milestone!r}"
        position = found + len(milestone)


def test_demo_refuses_a_decommission_choice_it_cannot_tell_before_it_starts(tmp_path: Path):
    env = clean_env("GITHUB_")
    proc = subprocess.run([sys.executable, "-m", "reconciler", "demo", "--workspace", str(tmp_path / "ws"),
                           "--decommission", "decommission/legacy-xks.yaml"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "choose the manifest of one store the demo creates" in proc.stderr
    assert not (tmp_path / "ws").exists() and "Traceback" not in proc.stderr


def test_set_state_absent_replaces_a_state_line_with_a_comment():
    """(it inserted a second state: line, a duplicate key, when the line had a comment)"""
    from reconciler.commands.demo import set_state_absent

    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.yaml"
        path.write_text("spec:\n  state: present   # keep it\n  type: EXTERNAL_KEY_STORE\n")
        set_state_absent(path)
        assert path.read_text() == "spec:\n  state: absent\n  type: EXTERNAL_KEY_STORE\n"
