"""Secrets: validate, plan (every format), show, apply (text and JSON, from paths and from a saved
plan), export, status and the journal run with known secret values, including steps that fail
with errors from KMS and a secret rotation; no secret, nor any 8-character piece of one, appears
in any stdout, stderr, plan file, journal or exported file.

The secrets are random for each run (so a piece of one cannot appear by chance) and come from the
environment and from files inside the manifests' root, as manifests reference them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets as random_secrets
import shutil
import string
from pathlib import Path

import pytest

from reconciler.apply.executor import Executor, Redactor
from tests.reliability.forked import ForkedCli

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "cluster-jxhlf7644ne"
ACCESS_KEY_ID = "AKIAXKSPROXYEXAMPLE2"
ROTATED_ACCESS_KEY_ID = "AKIAXKSPROXYROTATED2"


def xks_secret() -> str:
    return base64.b64encode(os.urandom(33)).decode()  # 44 base64 characters


def password() -> str:
    return "".join(random_secrets.choice(string.ascii_letters + string.digits) for _ in range(20))


def manifests(access_key_id: str = ACCESS_KEY_ID) -> str:
    return f"""\
apiVersion: reconciler/v1
kind: KeyStore
metadata: {{name: pay}}
spec:
  region: us-east-1
  type: EXTERNAL_KEY_STORE
  xks:
    connectivity: PUBLIC_ENDPOINT
    uriEndpoint: https://pay.example.com
    uriPath: /kms/xks/v1
    credential:
      accessKeyId: {access_key_id}
      secretAccessKey: {{fromEnv: PAY_XKS_SECRET}}
  keys:
    - {{xksKeyId: pay-1, alias: alias/pay-1}}
---
apiVersion: reconciler/v1
kind: KeyStore
metadata: {{name: ledger}}
spec:
  region: us-east-1
  type: EXTERNAL_KEY_STORE
  xks:
    connectivity: PUBLIC_ENDPOINT
    uriEndpoint: https://ledger.example.com
    uriPath: /kms/xks/v1
    credential:
      accessKeyId: {ACCESS_KEY_ID}
      secretAccessKey: {{fromFile: secrets/ledger.key}}
  keys:
    - {{xksKeyId: ledger-1}}
---
apiVersion: reconciler/v1
kind: KeyStore
metadata: {{name: vault}}
spec:
  region: us-east-1
  type: AWS_CLOUDHSM
  cloudHsm:
    clusterId: {CLUSTER}
    trustAnchorCertificate: {{fromFile: certs/customerCA.crt}}
    keyStorePassword: {{fromEnv: KMSUSER_PASSWORD}}
  keys:
    - {{alias: alias/vault-1}}
"""


def pieces(secret: str, width: int = 8) -> set[str]:
    return {secret[i:i + width] for i in range(len(secret) - width + 1)}


def test_no_secret_reaches_any_output(tmp_path):
    values = {"pay": xks_secret(), "ledger": xks_secret(), "vault": password(), "rotated": xks_secret(),
              "bad": "not-a-valid-secret-" + password()}
    cli = ForkedCli(tmp_path)
    cli.env.update({"PAY_XKS_SECRET": values["pay"], "KMSUSER_PASSWORD": values["vault"]})
    commands = set(cli("--help").out.split("Commands:")[1].split())
    m = tmp_path / "m"
    cli.write("m/stores.yaml", manifests())
    (m / "secrets").mkdir()
    (m / "secrets" / "ledger.key").write_text(values["ledger"] + "\n")
    (m / "certs").mkdir()
    shutil.copy(REPO / "manifests/certs/customerCA.crt", m / "certs/customerCA.crt")

    def ok(*args: str, codes=(0,), env=None):
        run = cli(*args, env=env)
        assert run.code in codes, (args, run.both)
        return run

    ok("sandbox", "seed-cluster", "--cluster-id", CLUSTER, "--trust-anchor", "m/certs/customerCA.crt")
    ok("validate", "m")
    ok("validate", "--check-secrets", "m")
    # a secret in the wrong format: refused, and the message does not show it
    bad = ok("validate", "--check-secrets", "m", codes=(1,), env={"PAY_XKS_SECRET": values["bad"]})
    assert "PAY_XKS_SECRET" in bad.err and "(value not shown)" in bad.err
    for fmt in ("text", "json", "markdown"):
        ok("plan", "--sandbox", "--format", fmt, "m", codes=(2,))
    ok("plan", "--sandbox", "--out", "plans/first.json", "m", codes=(2,))
    for fmt in ("text", "json", "markdown"):
        ok("show", "--format", fmt, "plans/first.json")

    # failing steps with errors from KMS: the proxy rejects ledger's credential at create, the
    # CloudHSM cluster rejects vault's password at connect
    ok("sandbox", "fault", "--store", "ledger", "--proxy-error", "XksProxyIncorrectAuthenticationCredentialException")
    ok("sandbox", "fault", "--store", "vault", "--connection-error", "INVALID_CREDENTIALS")
    failing = ok("apply", "--sandbox", "plans/first.json", codes=(1,))
    assert "XksProxyIncorrectAuthenticationCredentialException" in failing.out
    assert "INVALID_CREDENTIALS" in failing.out
    ok("apply", "--sandbox", "--auto-approve", "--format", "json", "m", codes=(1,))
    ok("sandbox", "fault", "--clear")
    # the repair re-sends vault's password (disconnect, update, connect); ledger is created
    repaired = ok("apply", "--sandbox", "--auto-approve", "--format", "json", "m")
    actions = [e["action"] for e in map(json.loads, repaired.out.splitlines()) if e["event"] == "ok"]
    assert "update_store" in actions and "create_store" in actions

    # a rotation: a new access key id and secret for pay, sent by update_store
    cli.env["PAY_XKS_SECRET"] = values["rotated"]
    cli.write("m/stores.yaml", manifests(access_key_id=ROTATED_ACCESS_KEY_ID))
    ok("plan", "--sandbox", "--format", "json", "--out", "plans/rotate.json", "m", codes=(2,))
    ok("show", "plans/rotate.json")
    ok("apply", "--sandbox", "plans/rotate.json")
    ok("apply", "--sandbox", "--auto-approve", "m")
    ok("plan", "--sandbox", "m")

    if "export" in commands:
        ok("export", "--sandbox")
        ok("export", "--sandbox", "--out", "exported")
    if "status" in commands:
        ok("status", "--sandbox")
        ok("status", "--sandbox", "--format", "json", "m")
    covered = {"validate", "plan", "show", "apply"} | ({"export", "status"} & commands)

    # everything people or pipelines read
    texts = {f"run {i}: {run.out[:60]!r}": run.out + run.err for i, run in enumerate(cli.runs)}
    files = [p for p in tmp_path.rglob("*") if p.is_file() and (
        p.parts[-2:-1] == ("plans",) or "exported" in p.parts or ".reconciler" in p.parts and "cache" in p.parts)]
    assert (tmp_path / "plans/journal.jsonl") in files and (tmp_path / "plans/first.json") in files
    for path in files:
        texts[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")
    journal = (tmp_path / "plans/journal.jsonl").read_text()
    assert journal.count('"run-start"') == 4 and '"failed"' in journal
    leaks = [(where, name) for where, text in texts.items() for name, secret in values.items()
             if any(piece in text for piece in pieces(secret))]
    assert not leaks, leaks
    assert covered >= {"validate", "plan", "show", "apply"}, covered


def test_a_kms_error_that_echoes_a_secret_is_redacted(tmp_path):
    """Should KMS ever echo a secret it was sent in an error message, the step's message, the
    event stream and the journal show "(sensitive)" instead."""
    from botocore.exceptions import ClientError

    from reconciler.apply.journal import Journal
    from reconciler.apply.progress import Progress
    from reconciler.aws.connection import Connection
    from reconciler.plan.model import Action, Plan, Step

    secret = xks_secret()

    class EchoingKms:
        def describe_custom_key_stores(self, **kwargs):
            return {"CustomKeyStores": [{"CustomKeyStoreId": "cks-1", "CustomKeyStoreName": "pay",
                                         "ConnectionState": "CONNECTED"}]}

        def update_custom_key_store(self, **kwargs):
            sent = kwargs["XksProxyAuthenticationCredential"]["RawSecretAccessKey"]
            raise ClientError({"Error": {"Code": "XksProxyIncorrectAuthenticationCredentialException",
                                         "Message": f"the proxy rejected {sent}"}}, "UpdateCustomKeyStore")

    class Inputs:
        def secret_access_key(self, store):
            return secret

    class Session:
        def client(self, *args, **kwargs):
            return EchoingKms()

    conn = Connection(session=Session(), region="us-east-1")
    conn._clients["kms"] = EchoingKms()
    step = Step(id="pay:update_store", action=Action.update_store, store="pay", reason="rotate",
                params={"accessKeyId": ACCESS_KEY_ID, "secretAccessKey": "(sensitive)", "changes": {}})
    redactor = Redactor()
    journal = Journal(tmp_path / "journal.jsonl")
    stream = tmp_path / "events.jsonl"
    with open(stream, "w") as out:
        progress = Progress(fmt="json", stream=out, journal=journal, run_id="r", redact=redactor)
        from reconciler.aws.ratelimit import RateLimiter
        from reconciler.apply.executor import ExecutorOptions

        result = Executor(conn, Plan(region="us-east-1", steps=(step,)), Inputs(), emit=progress,
                          redactor=redactor, options=ExecutorOptions(limiter=RateLimiter(enabled=False))).run()
    journal.close()
    (failed,) = result.results
    assert failed.outcome == "failed"
    assert failed.message == "XksProxyIncorrectAuthenticationCredentialException: the proxy rejected (sensitive)"
    for text in (stream.read_text(), (tmp_path / "journal.jsonl").read_text()):
        assert "the proxy rejected (sensitive)" in text
        assert not any(piece in text for piece in pieces(secret))
