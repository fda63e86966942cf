"""``reconciler export --from-terraform``: stores Terraform made (XKS public, XKS VPC, CloudHSM) are
exported from its state to manifests that validate and plan to no changes against the same
account; the `terraform state rm` lines hand every resource over; no secret of the state leaks."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from reconciler.adopt.terraform import from_terraform
from reconciler.errors import UserError
from tests.day2.helpers import REGION, Sandbox, connect
from tests.e2e.helpers import ACCESS_KEY_ID, PASSWORD, SECRET

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "terraform" / "three-stores.tfstate"
STATE_SECRETS = ("VGVycmFmb3JtIGtlZXBzIHRoaXMgaW4gY2xlYXIgdGV4dCE=", "Terraform-kmsuser-pw1")

# key reference in the fixture -> (store, XksKeyId or None, description, tags, enabled, alias)
KEYS = {
    "payments-key-0001": ("payments-xks", "payments-key-0001", "Payments data key (primary)",
                          {"team": "payments", "data-class": "pci"}, True, "alias/payments-primary"),
    "payments-key-0002": ("payments-xks", "payments-key-0002", "Payments archive key", {"team": "payments"}, False,
                          "alias/payments-archive"),
    "ledger-key-0001": ("ledger-vpc-xks", "ledger-key-0001", "Ledger entries", {"team": "ledger"}, True,
                        "alias/ledger-entries"),
    "records-primary": ("records-cloudhsm", None, "Medical records key", {"team": "records"}, True,
                        "alias/records-primary"),
    "records-reports": ("records-cloudhsm", None, "Reports key", {}, False, "alias/records-reports"),
}


def _fill(value: Any, known: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, known) for v in value]
    if isinstance(value, str):
        for placeholder, real in known.items():
            value = value.replace(placeholder, real)
    return value


@pytest.fixture
def made_by_terraform(sb: Sandbox) -> tuple[Sandbox, Path]:
    """The account Terraform's apply left (made here through the KMS API, as its provider does), and
    the state file that describes it: the fixture, its ids filled in from the account."""
    from reconciler.sandbox.seed import trust_anchor

    cluster = sb.seed_cluster()
    service = sb.seed_endpoint_service(dns="xks.ledger.internal.example.com")
    anchor = trust_anchor("123456789012", REGION, cluster)
    known = {"@CLUSTER_ID@": cluster, "@VPCE_SERVICE@": service, "@TRUST_ANCHOR@": anchor,
             "@XKS_ACCESS_KEY_ID@": ACCESS_KEY_ID, "@KEY_ID:logs@": "0d0f7a3e-1111-2222-3333-444455556666"}
    credential = {"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET}
    with sb.kms() as kms:
        stores = {
            "payments-xks": dict(CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="PUBLIC_ENDPOINT",
                                 XksProxyUriEndpoint="https://xks.payments.example.com", XksProxyUriPath="/kms/xks/v1",
                                 XksProxyAuthenticationCredential=credential),
            "ledger-vpc-xks": dict(CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
                                   XksProxyUriEndpoint="https://xks.ledger.internal.example.com",
                                   XksProxyUriPath="/ledger/kms/xks/v1", XksProxyVpcEndpointServiceName=service,
                                   XksProxyAuthenticationCredential=credential),
            "records-cloudhsm": dict(CloudHsmClusterId=cluster, TrustAnchorCertificate=anchor,
                                     KeyStorePassword=PASSWORD),
        }
        for name, params in stores.items():
            store_id = kms.create_custom_key_store(CustomKeyStoreName=name, **params)["CustomKeyStoreId"]
            assert connect(kms, store_id) == "CONNECTED"
            known[f"@STORE_ID:{name}@"] = store_id
        for ref, (store, xks_key_id, description, tags, enabled, alias) in KEYS.items():
            extra = {"Origin": "EXTERNAL_KEY_STORE", "XksKeyId": xks_key_id} if xks_key_id else {"Origin": "AWS_CLOUDHSM"}
            meta = kms.create_key(CustomKeyStoreId=known[f"@STORE_ID:{store}@"], Description=description,
                                  Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()], **extra)["KeyMetadata"]
            kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
            if not enabled:
                kms.disable_key(KeyId=meta["KeyId"])
            known[f"@KEY_ID:{ref}@"], known[f"@KEY_ARN:{ref}@"] = meta["KeyId"], meta["Arn"]
    known["@KEY_ARN:logs@"] = f"arn:aws:kms:{REGION}:123456789012:key/{known['@KEY_ID:logs@']}"
    state = _fill(json.loads(FIXTURE.read_text()), known)
    path = sb.workdir / "terraform.tfstate"
    path.write_text(json.dumps(state, indent=2))
    assert not re.search(r"@[A-Z_]+(:[^@]*)?@", path.read_text())  # every placeholder filled
    return sb, path


def test_the_fixture_covers_xks_public_xks_vpc_and_cloudhsm():
    state = json.loads(FIXTURE.read_text())
    assert state["version"] == 4
    stores = [i["attributes"] for r in state["resources"] if r["type"] == "aws_kms_custom_key_store"
              for i in r["instances"]]
    assert sorted((s["custom_key_store_type"], s["xks_proxy_connectivity"]) for s in stores) == [
        ("AWS_CLOUDHSM", ""), ("EXTERNAL_KEY_STORE", "PUBLIC_ENDPOINT"), ("EXTERNAL_KEY_STORE", "VPC_ENDPOINT_SERVICE")]


def test_terraform_state_exports_to_manifests_that_validate_and_plan_to_no_changes(made_by_terraform):
    sb, state = made_by_terraform
    run = sb.run("export", "--from-terraform", str(state), "--out", "adopted")
    assert run.code == 0, run.both
    out = sb.workdir / "adopted"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "certs/records-cloudhsm-customerCA.crt", "ledger-vpc-xks.yaml", "payments-xks.yaml", "records-cloudhsm.yaml"]
    assert sb.run("validate", "adopted").code == 0

    plan = sb.run("plan", "--sandbox", "--format", "json", "adopted")
    assert plan.code == 0, plan.both
    data = json.loads(plan.out)
    assert data["steps"] == [] and sorted(data["liveState"]["stores"]) == ["ledger-vpc-xks", "payments-xks",
                                                                            "records-cloudhsm"]
    assert not [f for f in data["findings"] if f["kind"] in ("refused", "drift_key", "unmanaged_store")]

    # what the manifests say, from the state's attributes
    payments = yaml.safe_load((out / "payments-xks.yaml").read_text())["spec"]
    assert payments["deletion"] == {"pendingWindowDays": 7}  # the keys' deletion_window_in_days
    assert payments["xks"]["credential"] == {"accessKeyId": ACCESS_KEY_ID,
                                             "secretAccessKey": {"fromEnv": "PAYMENTS_XKS_SECRET_ACCESS_KEY"}}
    assert {k["xksKeyId"]: (k["alias"], k["enabled"]) for k in payments["keys"]} == {
        "payments-key-0001": ("alias/payments-primary", True), "payments-key-0002": ("alias/payments-archive", False)}
    records = yaml.safe_load((out / "records-cloudhsm.yaml").read_text())["spec"]
    assert records["cloudHsm"]["keyStorePassword"] == {"fromEnv": "RECORDS_CLOUDHSM_KMSUSER_PASSWORD"}
    assert [k["alias"] for k in records["keys"]] == ["alias/records-primary", "alias/records-reports"]

    # the hand-over: one `terraform state rm` per resource of the three stores, quoted for a shell,
    # and nothing of the ordinary key Terraform keeps
    removed = [shlex.split(line)[3] for line in run.out.splitlines() if line.startswith("terraform state rm ")]
    assert sorted(removed) == sorted([
        "aws_kms_custom_key_store.payments", "aws_kms_key.payments_primary", "aws_kms_key.payments_archive",
        "aws_kms_alias.payments_primary", "aws_kms_alias.payments_archive",
        "module.ledger.aws_kms_custom_key_store.this", 'module.ledger.aws_kms_key.this["entries"]',
        'module.ledger.aws_kms_alias.this["entries"]',
        "aws_kms_custom_key_store.records", "aws_kms_key.records[0]", "aws_kms_key.records[1]",
        "aws_kms_alias.records_primary", "aws_kms_alias.records_reports"])
    assert """terraform state rm 'module.ledger.aws_kms_key.this["entries"]'""" in run.out

    # the state holds the secrets in clear text: none reaches a manifest, stdout or stderr
    written = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    for secret in STATE_SECRETS + (SECRET, PASSWORD):
        assert secret not in written and secret not in run.both


def test_terraform_show_json_exports_the_same_stores(made_by_terraform, tmp_path):
    """`terraform show -json` nests resources by module under values.root_module, with addresses."""
    _, state = made_by_terraform
    data = json.loads(state.read_text())
    root: dict[str, Any] = {"resources": [], "child_modules": []}
    modules: dict[str, dict] = {}
    for item in data["resources"]:
        for inst in item["instances"]:
            index = "" if "index_key" not in inst else f"[{json.dumps(inst['index_key'])}]"
            prefix = f"{item['module']}." if "module" in item else ""
            entry = {"address": f"{prefix}{item['type']}.{item['name']}{index}", "mode": item["mode"],
                     "type": item["type"], "name": item["name"], "values": inst["attributes"]}
            where = root if "module" not in item else modules.setdefault(
                item["module"], {"address": item["module"], "resources": []})
            where["resources"].append(entry)
    root["child_modules"] = list(modules.values())
    show = {"format_version": "1.0", "terraform_version": "1.9.8", "values": {"root_module": root}}
    from_state = from_terraform(str(state))
    shown = tmp_path / "show.json"
    shown.write_text(json.dumps(show))
    from_show = from_terraform(str(shown))
    assert from_show.live.to_dict() == from_state.live.to_dict()
    assert from_show.state_rm_lines() == from_state.state_rm_lines()


@pytest.mark.parametrize("content,message", [
    ("not json", "not a Terraform state in JSON"),
    ('{"version": 3, "modules": []}', "not a Terraform state of format version 4"),
    ('{"version": 4, "resources": []}', "holds no aws_kms_custom_key_store"),
])
def test_a_bad_state_file_is_one_error_with_the_fix(sb: Sandbox, content: str, message: str):
    sb.write("bad.tfstate", content)
    run = sb.run("export", "--from-terraform", "bad.tfstate", "--region", REGION)
    assert run.code == 1 and message in run.err and "Traceback" not in run.both
    assert len(run.err.strip().splitlines()) == 1


def test_a_missing_state_file_names_the_command_that_makes_it(tmp_path: Path):
    with pytest.raises(UserError, match="terraform state pull"):
        from_terraform(str(tmp_path / "nope.tfstate"))


# -- malformed states: one line naming where and what, never a traceback --------------------------

def _offline_state() -> dict[str, Any]:
    """The fixture, its placeholders filled with made-up ids (no account behind them)."""
    import uuid

    def ident(match: re.Match) -> str:
        what, name = match.group(1), match.group(2)
        if what == "STORE_ID":
            return f"cks-{uuid.uuid5(uuid.NAMESPACE_URL, name).hex[:17]}"
        key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        return key_id if what == "KEY_ID" else f"arn:aws:kms:{REGION}:123456789012:key/{key_id}"

    text = re.sub(r"@(STORE_ID|KEY_ID|KEY_ARN):([^@]*)@", ident, FIXTURE.read_text())
    known = {"@CLUSTER_ID@": "cluster-jxhlf7644ne", "@XKS_ACCESS_KEY_ID@": ACCESS_KEY_ID,
             "@VPCE_SERVICE@": f"com.amazonaws.vpce.{REGION}.vpce-svc-0123456789abcdef0",
             "@TRUST_ANCHOR@": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}
    return _fill(json.loads(text), known)


OFFLINE = _offline_state()


def _export_state(tmp_path: Path, state: Any):
    from click.testing import CliRunner

    from reconciler.cli import cli

    path = tmp_path / "S.tfstate"
    path.write_text(json.dumps(state))
    return CliRunner().invoke(cli, ["export", "--from-terraform", str(path), "--region", REGION],
                              prog_name="reconciler")


def _at(state: Any, where: tuple) -> Any:
    for part in where:
        state = state[part]
    return state


def _resource(name: str, type_: str = "aws_kms_key") -> tuple:
    return ("resources", next(n for n, r in enumerate(OFFLINE["resources"]) if r["name"] == name and r["type"] == type_))


PAYMENTS = _resource("payments", "aws_kms_custom_key_store") + ("instances", 0, "attributes")
PRIMARY = _resource("payments_primary") + ("instances", 0, "attributes")


@pytest.mark.parametrize("where, value, message", [
    (("resources", 0), 5, "resources[0]: expected an object, got a number"),
    (_resource("payments_primary") + ("instances", 0), "x",
     "aws_kms_key.payments_primary: instances[0]: expected an object, got a string"),
    (_resource("payments_primary") + ("name",), None, "resources[1] (aws_kms_key): name: missing"),
    (PRIMARY + ("deletion_window_in_days",), "seven",
     "aws_kms_key.payments_primary: deletion_window_in_days: expected a whole number of days from 7 to 30, got a string"),
    (PRIMARY + ("tags",), ["a"], "aws_kms_key.payments_primary: tags: expected an object of strings, got a list"),
    (PRIMARY + ("tags",), "x", "aws_kms_key.payments_primary: tags: expected an object of strings, got a string"),
    (PAYMENTS + ("xks_proxy_authentication_credential",), ["VGVycmFmb3JtIGtlZXBzIHRoaXMgaW4gY2xlYXIgdGV4dCE="],
     "aws_kms_custom_key_store.payments: xks_proxy_authentication_credential[0]: expected an object with "
     "access_key_id, got a string"),
    (PAYMENTS + ("custom_key_store_name",), None,
     "aws_kms_custom_key_store.payments: custom_key_store_name: missing: expected a non-empty string, got nothing"),
    (("resources",), "x", "resources: expected a list, got a string"),
    (PAYMENTS + ("xks_proxy_uri_endpoint",), "xks.example.com",
     "its values make a manifest that does not validate: payments-xks.yaml:"),
])
def test_a_malformed_state_is_one_line_naming_where_and_what(tmp_path: Path, where: tuple, value: Any, message: str):
    state = json.loads(json.dumps(OFFLINE))
    _at(state, where[:-1])[where[-1]] = value
    run = _export_state(tmp_path, state)
    assert run.exit_code == 1 and isinstance(run.exception, SystemExit)
    assert run.stderr.startswith(f"Error: {tmp_path / 'S.tfstate'}: not a Terraform state the tool can read: {message}")
    assert len(run.stderr.splitlines()) == 1 and run.stdout == ""
    for secret in STATE_SECRETS:
        assert secret not in run.stderr


def _paths(value: Any, where: tuple = ()) -> list[tuple]:
    found = [where] if where else []
    if isinstance(value, dict):
        found += [p for k, v in value.items() for p in _paths(v, where + (k,))]
    elif isinstance(value, list):
        found += [p for i, v in enumerate(value) for p in _paths(v, where + (i,))]
    return found


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["", "alias/x", "arn:", "arn:aws:kms", "EXTERNAL_KEY_STORE", "AWS_CLOUDHSM", "a\nb"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)
_DELETE = object()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(_paths(OFFLINE)), st.just(_DELETE) | _JSON), min_size=1, max_size=3))
def test_no_mutation_of_a_state_escapes_as_anything_but_one_error_line(tmp_path_factory, mutations):
    """Values and types of the fixture changed (or attributes removed) at random: the export
    succeeds or fails with one line, exit 1; no other exception escapes, no secret is printed."""
    state = json.loads(json.dumps(OFFLINE))
    for where, value in mutations:
        try:
            parent = _at(state, where[:-1])
            if value is _DELETE:
                del parent[where[-1]]
            else:
                parent[where[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced that place
    run = _export_state(tmp_path_factory.mktemp("fuzz"), state)
    assert run.exception is None or isinstance(run.exception, SystemExit), repr(run.exception)
    assert run.exit_code in (0, 1)
    if run.exit_code == 1:  # notes may come first (a key of a store the state does not hold)
        *notes, error = run.stderr.splitlines()
        assert error.startswith("Error: ") and all(n.startswith("Note: ") for n in notes), run.stderr
        assert "internal error" not in error
    for secret in STATE_SECRETS:
        assert secret not in run.output


@pytest.mark.parametrize("show, message", [
    ({"format_version": "1.0", "values": "x"}, "values: expected an object, got a string"),
    ({"format_version": "1.0", "values": {"root_module": {"resources": [5]}}},
     "values.root_module.resources[0]: expected an object, got a number"),
    ({"format_version": "1.0", "values": {"root_module": {"resources": [{"mode": "managed", "type": "aws_kms_key"}]}}},
     "values.root_module.resources[0] (aws_kms_key): address: missing: expected a non-empty string, got nothing"),
    ({"format_version": "1.0", "values": {"root_module": {"child_modules": "x"}}},
     "values.root_module.child_modules: expected a list, got a string"),
    ({"format_version": "1.0", "values": {"root_module": {"resources": [
        {"mode": "managed", "type": "aws_kms_alias", "address": "aws_kms_alias.a", "values": {"target_key_id": "k"}}]}}},
     "aws_kms_alias.a: name: missing: an alias needs its name"),
    ({"version": 4}, "resources: expected a list, got null"),
])
def test_a_malformed_show_json_is_one_line_naming_where_and_what(tmp_path: Path, show: dict, message: str):
    path = tmp_path / "show.json"
    path.write_text(json.dumps(show))
    with pytest.raises(UserError) as raised:
        from_terraform(str(path), region=REGION)
    assert str(raised.value) == f"{path}: not a Terraform state the tool can read: {message}"
