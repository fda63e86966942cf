"""``reconciler export``: adopt stores made by hand; export -> plan gives no changes."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from reconciler.adopt.export import Export, ExportedFile, env_base, scalar, slug, write_export
from reconciler.errors import UserError
from tests.day2.helpers import Sandbox, connect
from tests.e2e.helpers import ACCESS_KEY_ID, PASSWORD, SECRET



def _xks_store(kms, name: str, endpoint: str, **extra) -> str:
    params = {
        "CustomKeyStoreName": name, "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyConnectivity": "PUBLIC_ENDPOINT", "XksProxyUriEndpoint": endpoint, "XksProxyUriPath": "/kms/xks/v1",
        "XksProxyAuthenticationCredential": {"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET},
    }
    params.update(extra)
    return kms.create_custom_key_store(**params)["CustomKeyStoreId"]


def _key(kms, store_id: str, description: str = "", tags: dict | None = None, **extra) -> str:
    tags = [{"TagKey": k, "TagValue": v} for k, v in (tags or {}).items()]
    return kms.create_key(CustomKeyStoreId=store_id, Description=description, Tags=tags, **extra)["KeyMetadata"]["KeyId"]


@pytest.fixture
def hand_made(sb: Sandbox) -> Sandbox:
    """An account whose stores were all made by hand (console, CLI), in every state export meets."""
    cluster = sb.seed_cluster()
    service = sb.seed_endpoint_service(dns="xks.vpc.example.com")
    sb.fault(store="hand-failed", connection_error="XKS_PROXY_NOT_REACHABLE")
    with sb.kms() as kms:
        # a public XKS store, connected, with keys in every shape
        xks = _xks_store(kms, "hand-xks", "https://xks.hand.example.com")
        assert connect(kms, xks) == "CONNECTED"
        one = _key(kms, xks, "first key", {"team": "payments", "reconciler:managed-key": "ext-1"},
                   Origin="EXTERNAL_KEY_STORE", XksKeyId="ext-1")
        kms.create_alias(AliasName="alias/hand-one", TargetKeyId=one)
        kms.create_alias(AliasName="alias/hand-one-old", TargetKeyId=one)
        two = _key(kms, xks, "multi-line:\n  # not a comment\tand a tab", {"yes": "no", "empty": ""},
                   Origin="EXTERNAL_KEY_STORE", XksKeyId="ext-2")
        kms.disable_key(KeyId=two)
        three = _key(kms, xks, "going away", Origin="EXTERNAL_KEY_STORE", XksKeyId="ext-3")
        kms.create_alias(AliasName="alias/hand-three", TargetKeyId=three)
        kms.schedule_key_deletion(KeyId=three, PendingWindowInDays=7)
        # a VPC store, disconnected after a key was made: its key is Unavailable
        vpc = _xks_store(kms, "hand-vpc", "https://xks.vpc.example.com", XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
                         XksProxyVpcEndpointServiceName=service)
        assert connect(kms, vpc) == "CONNECTED"
        _key(kms, vpc, "ledger", Origin="EXTERNAL_KEY_STORE", XksKeyId="vpc-1")
        kms.disconnect_custom_key_store(CustomKeyStoreId=vpc)
        # a CloudHSM store: a key with an alias, one without
        from reconciler.sandbox.seed import trust_anchor

        hsm = kms.create_custom_key_store(CustomKeyStoreName="hand-hsm", CloudHsmClusterId=cluster,
                                          TrustAnchorCertificate=trust_anchor("123456789012", "us-east-1", cluster),
                                          KeyStorePassword=PASSWORD)["CustomKeyStoreId"]
        assert connect(kms, hsm) == "CONNECTED"
        named = _key(kms, hsm, "records", {"team": "records"}, Origin="AWS_CLOUDHSM")
        kms.create_alias(AliasName="alias/hand-records", TargetKeyId=named)
        _key(kms, hsm, "nameless", Origin="AWS_CLOUDHSM")
        # a store whose connection FAILED, and one with an awkward name
        failed = _xks_store(kms, "hand-failed", "https://xks.failed.example.com")
        assert connect(kms, failed) == "FAILED"
        _xks_store(kms, "Team A/store #1", "https://xks.team-a.example.com")
    return sb


def _plan(sb: Sandbox, *paths: str) -> tuple[int, dict]:
    run = sb.run("plan", "--sandbox", "--format", "json", *paths)
    assert run.code in (0, 2), run.both
    return run.code, json.loads(run.out)


def test_export_then_plan_gives_no_changes_except_the_failed_store_repair(hand_made: Sandbox):
    sb = hand_made
    run = sb.run("export", "--sandbox", "--out", "adopted")
    assert run.code == 0, run.both
    files = sorted(p.relative_to(sb.workdir / "adopted").as_posix() for p in (sb.workdir / "adopted").rglob("*")
                   if p.is_file())
    assert files == ["Team-A-store-1.yaml", "certs/hand-hsm-customerCA.crt", "hand-failed.yaml", "hand-hsm.yaml",
                     "hand-vpc.yaml", "hand-xks.yaml"]
    assert sb.run("validate", "adopted").code == 0

    code, plan = _plan(sb, "adopted")
    assert code == 2
    assert [(s["store"], s["action"]) for s in plan["steps"]] == [("hand-failed", "disconnect_store"),
                                                                  ("hand-failed", "connect_store")]
    assert not [f for f in plan["findings"] if f["kind"] in ("refused", "unmanaged_store")]
    drift = sorted((f["store"], f["key"]) for f in plan["findings"] if f["kind"] == "drift_key")
    # the key pending deletion and the CloudHSM key without an alias are listed, never declared
    assert [store for store, _ in drift] == ["hand-hsm", "hand-xks"]

    # everything but the FAILED store: no changes at all
    files = [str(p) for p in (sb.workdir / "adopted").glob("*.yaml") if p.name != "hand-failed.yaml"]
    code, plan = _plan(sb, *files)
    assert code == 0 and plan["steps"] == []
    # ...and apply agrees
    applied = sb.run("apply", "--sandbox", "--auto-approve", *files)
    assert applied.code == 0 and "No changes" in applied.out


def test_exported_manifest_says_what_it_decided(hand_made: Sandbox):
    sb = hand_made
    assert sb.run("export", "--sandbox", "--out", "adopted").code == 0
    xks = (sb.workdir / "adopted" / "hand-xks.yaml").read_text()
    data = yaml.safe_load(xks)
    keys = {k["xksKeyId"]: k for k in data["spec"]["keys"]}
    assert set(keys) == {"ext-1", "ext-2"}  # ext-3 is pending deletion
    assert keys["ext-1"]["alias"] == "alias/hand-one"  # the alias its managed tag names
    assert keys["ext-1"]["tags"] == {"team": "payments"}  # the tool's own tag is not a user tag
    assert "alias/hand-one-old (left as it is)" in xks
    assert keys["ext-2"] == {"xksKeyId": "ext-2", "description": "multi-line:\n  # not a comment\tand a tab",
                             "enabled": False, "tags": {"yes": "no", "empty": ""}}
    assert data["spec"]["xks"]["credential"] == {"accessKeyId": ACCESS_KEY_ID,
                                                 "secretAccessKey": {"fromEnv": "HAND_XKS_SECRET_ACCESS_KEY"}}
    assert "export HAND_XKS_SECRET_ACCESS_KEY=..." in xks
    assert "Pending deletion, so NOT declared" in xks
    assert "    # - xksKeyId: ext-3\n    #   alias: alias/hand-three\n" in xks
    assert data["spec"]["deletion"] == {"pendingWindowDays": 30}

    hsm = (sb.workdir / "adopted" / "hand-hsm.yaml").read_text()
    data = yaml.safe_load(hsm)
    assert data["spec"]["cloudHsm"]["trustAnchorCertificate"] == {"fromFile": "certs/hand-hsm-customerCA.crt"}
    assert data["spec"]["cloudHsm"]["keyStorePassword"] == {"fromEnv": "HAND_HSM_KMSUSER_PASSWORD"}
    assert [k["alias"] for k in data["spec"]["keys"]] == ["alias/hand-records"]
    assert "identified by their alias, and these have none" in hsm and "nameless" in hsm

    vpc = yaml.safe_load((sb.workdir / "adopted" / "hand-vpc.yaml").read_text())
    assert vpc["spec"]["connection"] == "disconnected"
    assert vpc["spec"]["xks"]["vpcEndpointServiceName"].endswith(".vpce-svc-" + vpc["spec"]["xks"]
                                                                 ["vpcEndpointServiceName"].split("vpce-svc-")[1])
    assert "UNKNOWN: the store is not connected" in (sb.workdir / "adopted" / "hand-vpc.yaml").read_text()

    failed = (sb.workdir / "adopted" / "hand-failed.yaml").read_text()
    assert yaml.safe_load(failed)["spec"]["connection"] == "connected"
    assert "XKS_PROXY_NOT_REACHABLE" in failed and "disconnect, then connect" in failed

    odd = yaml.safe_load((sb.workdir / "adopted" / "Team-A-store-1.yaml").read_text())
    assert odd["metadata"]["name"] == "Team A/store #1"
    assert odd["spec"]["xks"]["credential"]["secretAccessKey"] == {"fromEnv": "TEAM_A_STORE_1_SECRET_ACCESS_KEY"}
    # no secret ever reaches an exported file
    for path in (sb.workdir / "adopted").rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text() and PASSWORD not in path.read_text()


def test_uncommenting_a_pending_key_rescues_it(hand_made: Sandbox):
    sb = hand_made
    assert sb.run("export", "--sandbox", "--out", "adopted", "--store", "hand-xks").code == 0
    path = sb.workdir / "adopted" / "hand-xks.yaml"
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "- xksKeyId: ext-3" in line)
    for i in range(start, len(lines)):
        if not re.match(r"\s*#\s{3}", lines[i]) and i > start:
            break
        lines[i] = lines[i].replace("    # ", "    ", 1)
    path.write_text("\n".join(lines) + "\n")
    code, plan = _plan(sb, str(path))
    assert code == 2
    assert [s["action"] for s in plan["steps"]] == ["cancel_key_deletion", "update_key"]
    assert plan["steps"][1]["params"]["enabled"] is True


def test_export_to_stdout_round_trips_with_the_trust_anchor_inline(hand_made: Sandbox):
    sb = hand_made
    run = sb.run("export", "--sandbox", "--store", "hand-hsm", "--store", "hand-xks")
    assert run.code == 0, run.both
    docs = list(yaml.safe_load_all(run.out))
    assert [d["metadata"]["name"] for d in docs] == ["hand-hsm", "hand-xks"]
    assert docs[0]["spec"]["cloudHsm"]["trustAnchorCertificate"].startswith("-----BEGIN CERTIFICATE-----")
    sb.write("all.yaml", run.out)
    code, plan = _plan(sb, "all.yaml")
    assert code == 0 and plan["steps"] == []
    assert "HAND_HSM_KMSUSER_PASSWORD" in run.err  # what to set before an apply, on stderr


def test_export_refuses_to_overwrite_unless_forced(hand_made: Sandbox):
    sb = hand_made
    assert sb.run("export", "--sandbox", "--out", "adopted", "--store", "hand-xks").code == 0
    target = sb.workdir / "adopted" / "hand-xks.yaml"
    target.write_text("# my edits\n")
    again = sb.run("export", "--sandbox", "--out", "adopted")
    assert again.code == 1
    assert "already exist; nothing was written" in again.err and "--force" in again.err
    assert target.read_text() == "# my edits\n"
    assert not (sb.workdir / "adopted" / "hand-hsm.yaml").exists()  # all or nothing
    forced = sb.run("export", "--sandbox", "--out", "adopted", "--force")
    assert forced.code == 0 and target.read_text().startswith("# Exported")


def test_export_to_an_unwritable_out_is_one_line_and_writes_nothing(hand_made: Sandbox):
    sb = hand_made
    (sb.workdir / "notyaml.txt").write_text("x")
    (sb.workdir / "ex2").mkdir()
    (sb.workdir / "ex2" / "certs").write_text("")
    (sb.workdir / "ex3" / "hand-xks.yaml").mkdir(parents=True)
    for args, why in ((["--out", "notyaml.txt/sub"], "notyaml.txt is not a directory"),
                      (["--out", "ex2"], "ex2/certs is not a directory"),
                      (["--out", "ex3", "--force"], "ex3/hand-xks.yaml: it is a directory")):
        run = sb.run("export", "--sandbox", *args)
        assert run.code == 1, run.both
        assert run.err.startswith("Error: cannot write ") and why in run.err and "choose another --out" in run.err
        assert "Traceback" not in run.both and len(run.err.splitlines()) == 1
    assert sorted(p.name for p in (sb.workdir / "ex2").iterdir()) == ["certs"]
    assert [p.name for p in (sb.workdir / "ex3").iterdir()] == ["hand-xks.yaml"]  # no .tmp, no other store


def test_export_of_an_unknown_store_or_an_empty_region(sb: Sandbox):
    empty = sb.run("export", "--sandbox")
    assert empty.code == 0 and "nothing to export" in empty.err
    unknown = sb.run("export", "--sandbox", "--store", "nope")
    assert unknown.code == 1 and "no custom key store named nope" in unknown.err


# -- units --------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_scalar_reads_back_as_the_same_string_inside_a_mapping(value: str):
    text = f"a:\n  description: {scalar(value)}\n  b: 1\n"
    assert yaml.safe_load(text) == {"a": {"description": value, "b": 1}}


@pytest.mark.parametrize("name, file, env", [
    ("payments-xks", "payments-xks", "PAYMENTS_XKS"),
    ("Team A/store #1", "Team-A-store-1", "TEAM_A_STORE_1"),
    ("9lives", "9lives", "STORE_9LIVES"),
    ("///", "store", "STORE"),
])
def test_file_and_environment_names_derive_from_the_store_name(name, file, env):
    assert slug(name) == file
    assert env_base(name) == env


def _export() -> Export:
    return Export(files=[ExportedFile("a.yaml", "a: 1\n", store="a"), ExportedFile("certs/a.crt", "cert\n"),
                         ExportedFile("sub/b.yaml", "b: 1\n", store="b")])


def test_write_export_checks_every_destination_before_writing(tmp_path):
    (tmp_path / "certs").write_text("")
    with pytest.raises(UserError, match=r"certs is not a directory; choose another --out \(nothing was written\)"):
        write_export(_export(), tmp_path)
    (tmp_path / "certs").unlink()
    (tmp_path / "sub" / "b.yaml").mkdir(parents=True)
    with pytest.raises(UserError, match="b.yaml: it is a directory; choose another --out"):
        write_export(_export(), tmp_path, force=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["sub", "sub/b.yaml"]
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="file is not a directory"):
        write_export(_export(), tmp_path / "file" / "out")


def test_write_export_failure_removes_what_it_wrote(tmp_path, monkeypatch):
    import os as os_module

    (tmp_path / "a.yaml").write_text("mine\n")
    real_open = os_module.open

    def failing_open(path, *args, **kwargs):
        if "b.yaml" in str(path):
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os_module, "open", failing_open)
    with pytest.raises(UserError, match="No space left on device; choose another --out \\(nothing was written\\)"):
        write_export(_export(), tmp_path, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]  # no temporary file, no directory made
    assert (tmp_path / "a.yaml").read_text() == "mine\n"
    monkeypatch.undo()
    written = write_export(_export(), tmp_path, force=True)
    assert [p.read_text() for p in written] == ["a: 1\n", "cert\n", "b: 1\n"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.crt", "a.yaml", "b.yaml", "certs", "sub"]


def test_export_without_a_region_names_the_flag_not_manifests(sb: Sandbox):
    """export reads no manifests: no region is --region or AWS_REGION, not 'spec.region'."""
    run = sb.run("export", "--endpoint-url", "http://127.0.0.1:9", env={"AWS_REGION": None, "AWS_DEFAULT_REGION": None})
    assert run.code == 1 and "pass --region (the region to export) or set AWS_REGION" in run.err, run.err
    assert "spec.region" not in run.err
