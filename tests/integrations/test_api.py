"""reconciler.api: the example in docs/api.md runs, and what the API returns is what the CLI prints
as JSON (plan, status) or as its event stream (apply)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reconciler import api
from tests.day2.helpers import Sandbox
from tests.e2e.helpers import SECRET, xks_manifest

REPO = Path(__file__).resolve().parents[2]


def test_the_example_in_docs_api_md_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    for name in ("XKS_ACCESS_KEY_ID", "XKS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    exec(compile(blocks[0], "docs/api.md", "exec"), {"__name__": "docs_api_example"})
    out = capsys.readouterr().out
    assert "+ payments-xks:create_store" in out and "\nrun-end" in out
    assert "payments-xks CONNECTED {'Enabled': 1}" in out
    assert SECRET not in out


@pytest.fixture
def sb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    sb = Sandbox(tmp_path)
    for name, value in sb.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return sb


def test_the_api_returns_what_the_cli_prints(sb: Sandbox):
    sb.write("m/payments.yaml", xks_manifest())
    where = api.target(sandbox=True, sandbox_dir=str(sb.directory))
    planned = api.plan([sb.workdir / "m"], target=where)
    cli = sb.run("plan", "--sandbox", "--format", "json", "m")
    assert cli.code == 2
    ours, theirs = planned.to_dict(), json.loads(cli.out)
    for data in (ours, theirs):  # made at different moments, from different working directories
        data.pop("createdAt"), data.pop("planDigest"), data["manifests"].pop("paths")
    assert ours == theirs

    result = api.apply(planned, target=where)
    assert result.exit_code == 0 and result.converged
    kinds = [e["event"] for e in result.events]
    assert kinds[0] == "run-start" and kinds[-1] == "run-end" and kinds.count("ok") == len(planned.steps)
    assert {e["step"] for e in result.of("ok")} == {s.id for s in planned.steps}

    report = api.status(["m"], target=where).to_dict()
    printed = json.loads(sb.run("status", "--sandbox", "--format", "json", "m").out)
    assert report.pop("readAt") <= printed.pop("readAt") and report == printed


def test_a_stale_plan_is_refused_and_errors_are_user_errors(sb: Sandbox):
    sb.write("m/payments.yaml", xks_manifest())
    where = api.target(sandbox=True, sandbox_dir=str(sb.directory))
    planned = api.plan(["m"], target=where)
    assert api.apply(["m"], target=where).converged  # the live state moves on
    with pytest.raises(api.UserError) as refused:
        api.apply(planned, target=where)
    assert refused.value.exit_code == 1
    sb.write("bad/x.yaml", "apiVersion: reconciler/v1\nkind: KeyStore\n")
    assert [str(p).split(":")[0] for p in api.load("bad").problems][:1] == ["bad/x.yaml"]
    with pytest.raises(api.UserError, match="not valid"):
        api.plan("bad", target=where)


def test_allow_recent_use_is_the_flag_of_plan_and_apply(sb: Sandbox):
    """A key used (Decrypt) a day ago: the API's plan refuses its deletion and apply raises, as
    the CLI does; ``allow_recent_use=True`` is ``--allow-recent-use`` for both."""
    sb.write("m/payments.yaml", xks_manifest())
    where = api.target(sandbox=True, sandbox_dir=str(sb.directory))
    assert api.apply(["m"], target=where).converged
    with sb.kms() as kms:
        key_id = next(k["KeyId"] for k in kms.list_keys()["Keys"]
                      if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("CustomKeyStoreId"))
        kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"])
    sb.advance(86400)
    sb.write("m/payments.yaml", xks_manifest(state="absent"))

    refused = api.plan(["m"], target=where)
    assert [f.kind for f in refused.findings if f.kind == "refused"] and refused.refusals
    with pytest.raises(api.UserError) as raised:
        api.apply(["m"], target=where, allow_destroy=True)
    assert raised.value.exit_code == 1

    allowed = api.plan(["m"], target=where, allow_recent_use=True)
    assert not allowed.refusals and any(s.action.value == "schedule_key_deletion" for s in allowed.steps)
    result = api.apply(["m"], target=where, allow_destroy=True, allow_recent_use=True)
    assert result.deferred and result.of("ok")
