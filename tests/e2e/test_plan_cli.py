"""validate, schema, plan and show through the CLI (new processes where noted)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from tests.e2e.helpers import xks_manifest

pytestmark = pytest.mark.e2e


def test_validate_reports_every_problem_with_file_line_col(cli):
    cli.write("m/ok.yaml", xks_manifest())
    cli.write("m/bad.yaml", """\
        apiVersion: reconciler/v1
        kind: KeyStore
        metadata:
          name: bad
        spec:
          type: EXTERNAL_KEY_STORE
          xks:
            connectivity: PUBLIC_ENDPOINT
            uriEndpoint: https://xks.example.com:8443
            uriPath: /wrong
            credential:
              accessKeyId: ABCDEFGHIJKLMNOPQRST
              secretAccessKey: an-inline-secret-that-must-not-echo
          deletion: {pendingWindowDays: 3}
    """)
    run = cli("validate", "m")
    assert run.code == 1
    lines = run.err.splitlines()
    assert any(line.startswith("m/bad.yaml:9:") and "port" in line for line in lines), run.err
    assert any(line.startswith("m/bad.yaml:10:") and "/kms/xks/v" in line for line in lines), run.err
    assert any(line.startswith("m/bad.yaml:13:") for line in lines), run.err
    assert any(line.startswith("m/bad.yaml:14:") and "7" in line for line in lines), run.err
    assert "an-inline-secret-that-must-not-echo" not in run.both
    assert "Traceback" not in run.both
    assert cli("validate", "m/ok.yaml").code == 0


@pytest.mark.parametrize("content,expected", [
    ("a: [1, 2\n", "invalid yaml"),
    ("", "empty"),
])
def test_validate_malformed_and_empty_files_are_one_line_errors(cli, content, expected):
    (cli.workdir / "x.yaml").write_text(content)
    run = cli("validate", "x.yaml")
    assert run.code == 1 and expected in run.err.lower() and "Traceback" not in run.err


def test_validate_missing_path(cli):
    run = cli("validate", "nope/")
    assert run.code == 1 and "nope" in run.err and "Traceback" not in run.err


def test_schema_is_json_schema(cli):
    run = cli("schema")
    schema = json.loads(run.out)
    assert run.code == 0 and "$schema" in schema and "properties" in schema


def test_plan_formats_and_exit_codes(cli_process):
    cli = cli_process  # in new processes
    cli.write("m/payments.yaml", xks_manifest())
    text = cli("plan", "--sandbox", "m")
    assert text.code == 2
    assert "+ create_store" in text.out and "+ create_key ext-key-0001" in text.out
    assert "Plan: 5 to create, 1 to change, 0 to destroy." in text.out
    assert "\x1b[" not in text.out  # no colours when stdout is not a terminal
    assert "(sensitive)" in text.out

    as_json = cli("plan", "--sandbox", "--format", "json", "m")
    assert as_json.code == 2
    doc = json.loads(as_json.out)
    assert doc["formatVersion"] == 2 and doc["region"] == "us-east-1" and doc["toolVersion"]
    assert doc["createdAt"].endswith("Z")
    assert doc["manifests"]["digest"] and doc["liveState"]["digest"].startswith("sha256:")
    assert doc["summary"] == {"create": 5, "update": 1, "destroy": 0, "deferred": 0, "refused": 0}
    step = doc["steps"][0]
    assert set(step) == {"id", "action", "store", "key", "params", "dependsOn", "reason", "destructive",
                         "deferredUntil"}

    md = cli("plan", "--sandbox", "--format", "markdown", "m")
    assert md.code == 2 and "| | step | store | key | reason | deferred until |" in md.out

    saved = cli("plan", "--sandbox", "--out", "plans/p.json", "m")
    assert saved.code == 2 and "plans/p.json" in saved.err
    for fmt, expected in (("text", "+ create_store"), ("markdown", "`create_store`"), ("json", '"formatVersion": 2')):
        shown = cli("show", "--format", fmt, "plans/p.json")
        assert shown.code == 0 and expected in shown.out
    assert json.loads(cli("show", "--format", "json", "plans/p.json").out)["steps"] == doc["steps"]


def test_plan_shows_deferred_delete_with_its_date(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    cli.write("m/payments.yaml", xks_manifest(state="absent"))
    run = cli("plan", "--sandbox", "m")
    assert run.code == 2
    assert "- schedule_key_deletion ext-key-0001" in run.out
    assert "deferred until 20" in run.out and "1 deferred" in run.out
    assert "destructive step(s): apply runs them only with --allow-destroy" in run.out


def test_plan_refusal_exits_1(cli):
    cli.write("m/payments.yaml", xks_manifest())
    assert cli("apply", "--sandbox", "--auto-approve", "m").code == 0
    from pathlib import Path

    cert = Path(__file__).resolve().parents[2] / "manifests" / "certs" / "customerCA.crt"
    (cli.workdir / "m/ca.crt").write_text(cert.read_text())
    text = (cli.workdir / "m/payments.yaml").read_text()
    text = text.replace("EXTERNAL_KEY_STORE", "AWS_CLOUDHSM").split("  xks:")[0] + (
        "  cloudHsm:\n    clusterId: cluster-jxhlf7644ne\n    trustAnchorCertificate: {fromFile: ca.crt}\n"
        "    keyStorePassword: {fromEnv: KMSUSER_PASSWORD}\n")
    (cli.workdir / "m/payments.yaml").write_text(text)
    run = cli("plan", "--sandbox", "m")
    assert run.code == 1 and "cannot change a store's type" in run.out


def test_plan_without_region_or_credentials_is_a_clear_error(cli):
    cli.write("m/p.yaml", xks_manifest().replace("  region: us-east-1\n", ""))
    run = cli("plan", "m", env={"AWS_REGION": "", "AWS_DEFAULT_REGION": ""})
    assert run.code == 1 and "region" in run.err and "Traceback" not in run.err


def test_plan_colours_only_on_a_tty(cli):
    cli.write("m/payments.yaml", xks_manifest())
    env = {k: v for k, v in cli.env.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "plan", "--sandbox", "m"], cwd=cli.workdir,
                            env=env, stdout=secondary, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(primary)
    out = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 2
    assert "\x1b[" in out and "create_store" in out
