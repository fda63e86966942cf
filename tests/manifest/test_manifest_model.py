"""Every KMS constraint on a manifest, valid and invalid, checked on the models directly."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from reconciler.manifest import (
    CloudHsmSpec,
    KeyStoreManifest,
    ManagedKey,
    SecretRef,
    XksCredential,
    XksSpec,
)
from reconciler.manifest.loader import parse_field_path

XKS_DOC: dict[str, Any] = {
    "apiVersion": "reconciler/v1",
    "kind": "KeyStore",
    "metadata": {"name": "payments-xks"},
    "spec": {
        "region": "us-east-1",
        "account": "111122223333",
        "type": "EXTERNAL_KEY_STORE",
        "xks": {
            "connectivity": "PUBLIC_ENDPOINT",
            "uriEndpoint": "https://xks.example.com",
            "uriPath": "/kms/xks/v1",
            "credential": {
                "accessKeyId": {"fromEnv": "XKS_ACCESS_KEY_ID"},
                "secretAccessKey": {"fromEnv": "XKS_SECRET_ACCESS_KEY"},
            },
        },
        "keys": [{"alias": "alias/payments-primary", "xksKeyId": "ext-key-0001",
                  "description": "Payments data key", "enabled": True, "tags": {"team": "payments"}}],
        "deletion": {"pendingWindowDays": 7},
    },
}

VPC_XKS = {
    "connectivity": "VPC_ENDPOINT_SERVICE",
    "uriEndpoint": "https://xks.internal.example.com",
    "uriPath": "/kms/xks/v1",
    "vpcEndpointServiceName": "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
    "credential": {"accessKeyId": "ABCDEFGHIJKLMNOPQRST", "secretAccessKey": {"fromFile": "secret.txt"}},
}

HSM_DOC: dict[str, Any] = {
    "apiVersion": "reconciler/v1",
    "kind": "KeyStore",
    "metadata": {"name": "records"},
    "spec": {
        "type": "AWS_CLOUDHSM",
        "cloudHsm": {
            "clusterId": "cluster-jxhlf7644ne",
            "trustAnchorCertificate": {"fromFile": "customerCA.crt"},
            "keyStorePassword": {"fromEnv": "KMSUSER_PASSWORD"},
        },
        "keys": [{"alias": "alias/records"}],
    },
}

_DELETE = object()


def doc(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``base`` with fields set (or removed with _DELETE); keys are dotted paths."""
    out = copy.deepcopy(base)
    for dotted, value in changes.items():
        loc = parse_field_path(dotted.replace("__", "."))
        target: Any = out
        for part in loc[:-1]:
            target = target[part]
        if value is _DELETE:
            del target[loc[-1]]
        else:
            target[loc[-1]] = value
    return out


def errors(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(dotted loc without union tags, error type, message) of every validation error."""
    try:
        KeyStoreManifest.model_validate(data)
    except ValidationError as exc:
        out = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e["loc"] if p not in ("literal", "ref"))
            out.append((loc, e["type"], e["msg"]))
        return out
    return []


def error_locs(data: dict[str, Any]) -> set[str]:
    return {loc for loc, _, _ in errors(data)}


# ---------------------------------------------------------------------------- valid manifests


def test_full_xks_manifest_is_valid_and_keeps_camel_case_fields() -> None:
    m = KeyStoreManifest.model_validate(XKS_DOC)
    assert m.metadata.name == "payments-xks"
    assert m.spec.xks is not None and m.spec.xks.uriEndpoint == "https://xks.example.com"
    assert m.spec.xks.credential is not None
    assert m.spec.xks.credential.secretAccessKey == SecretRef(fromEnv="XKS_SECRET_ACCESS_KEY")
    assert m.spec.keys[0].xksKeyId == "ext-key-0001"
    assert m.spec.keys[0].identity == "ext-key-0001"
    assert m.spec.deletion.pendingWindowDays == 7


def test_defaults() -> None:
    data = doc(XKS_DOC, **{"spec.keys": [{"xksKeyId": "k1"}]})
    del data["spec"]["deletion"]
    m = KeyStoreManifest.model_validate(data)
    assert m.spec.state == "present"
    assert m.spec.connection == "connected"
    key = m.spec.keys[0]
    assert (key.alias, key.description, key.enabled, key.tags) == (None, "", True, {})
    assert m.spec.deletion.pendingWindowDays == 30
    minimal = doc(XKS_DOC)
    del minimal["spec"]["keys"]
    assert KeyStoreManifest.model_validate(minimal).spec.keys == []


def test_vpc_xks_is_valid() -> None:
    m = KeyStoreManifest.model_validate(doc(XKS_DOC, **{"spec.xks": VPC_XKS}))
    assert m.spec.xks is not None and m.spec.xks.connectivity == "VPC_ENDPOINT_SERVICE"
    owned = doc(XKS_DOC, **{"spec.xks": {**VPC_XKS, "vpcEndpointServiceOwner": "444455556666"}})
    assert errors(owned) == []


def test_cloudhsm_is_valid() -> None:
    m = KeyStoreManifest.model_validate(HSM_DOC)
    assert m.spec.cloudHsm is not None and m.spec.cloudHsm.clusterId == "cluster-jxhlf7644ne"
    assert m.spec.keys[0].identity == "alias/records"
    literal_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    assert errors(doc(HSM_DOC, **{"spec.cloudHsm.trustAnchorCertificate": literal_pem})) == []


def test_absent_store_needs_only_name_type_and_state() -> None:
    data = {"apiVersion": "reconciler/v1", "kind": "KeyStore", "metadata": {"name": "legacy"},
            "spec": {"type": "EXTERNAL_KEY_STORE", "state": "absent"}}
    assert errors(data) == []
    hsm = doc(data, **{"spec.type": "AWS_CLOUDHSM"})
    assert errors(hsm) == []
    # partial settings are fine for a store being decommissioned...
    partial = doc(data, **{"spec.xks": {"uriPath": "/kms/xks/v1"}, "spec.keys": [{"alias": "alias/x"}]})
    assert errors(partial) == []
    # ...but what is given is still validated
    bad = doc(data, **{"spec.xks": {"uriPath": "/nope"}, "spec.region": "us-east-1"})
    assert error_locs(bad) == {"spec.xks.uriPath"}
    assert error_locs(doc(data, **{"spec.cloudHsm": {}})) == {"spec.cloudHsm"}


def test_models_are_frozen() -> None:
    m = KeyStoreManifest.model_validate(XKS_DOC)
    with pytest.raises(ValidationError):
        m.metadata.name = "other"  # type: ignore[misc]


# ---------------------------------------------------------------------------- per-field constraints

# (dotted path, valid values, invalid values)
FIELD_CASES: list[tuple[str, list[Any], list[Any]]] = [
    ("metadata.name", ["a", "x" * 256, "Payments store #1"], ["", "x" * 257, 5, None]),
    ("spec.region", ["us-east-1", "eu-central-1", "us-gov-west-1", "ap-southeast-2"],
     ["US-EAST-1", "useast1", "", 1]),
    ("spec.account", ["111122223333", "012345678901"], ["11112222333", "1111222233334", "11112222333a", 111122223333]),
    ("spec.type", ["EXTERNAL_KEY_STORE"], ["XKS", "external_key_store", "", None]),
    ("spec.state", ["present", "absent"], ["gone", "Present", True]),
    ("spec.connection", ["connected", "disconnected"], ["on", False, "CONNECTED"]),
    ("spec.xks.connectivity", ["PUBLIC_ENDPOINT"], ["PUBLIC", "public_endpoint", 1]),
    ("spec.xks.uriEndpoint",
     ["https://xks.example.com", "https://a.b", "https://" + "a" * 120, "https://XKS-1.Example.COM"],
     ["http://xks.example.com", "https://xks.example.com:443", "https://xks.example.com/", "https://xks.example.com/kms",
      "https://xks_example.com", "https://a", "https://" + "a" * 121, "xks.example.com", "", 443]),
    ("spec.xks.uriPath",
     ["/kms/xks/v1", "/kms/xks/v12", "/prefix/kms/xks/v1", "/a/b_c-d/kms/xks/v2", "/" + "p" * 116 + "/kms/xks/v1"],
     ["/foo", "kms/xks/v1", "/kms/xks/v", "/kms/xks/v123", "/kms/xks/v1/", "/pre fix/kms/xks/v1",
      "/pre.fix/kms/xks/v1", "//kms/xks/v1x", "/" + "p" * 117 + "/kms/xks/v1", ""]),
    ("spec.deletion.pendingWindowDays", [7, 8, 29, 30], [6, 31, 0, -7, "7", 7.0, True]),
    ("spec.keys[0].alias", ["alias/x", "alias/a/b/c_d-e", "alias/" + "a" * 250],
     ["x", "alias/", "alias/aws/foo", "alias/team:app", "alias/has space", "alias/" + "a" * 251, "Alias/x", 1]),
    ("spec.keys[0].xksKeyId", ["k", "ext-key_0001.v2", "a" * 128], ["", "has space", "a/b", "a" * 129, 1]),
    ("spec.keys[0].description", ["", "d" * 8192], ["d" * 8193, 5, None]),
    ("spec.keys[0].enabled", [True, False], ["yes", "true", 1, None]),
    ("spec.keys[0].tags", [{}, {"k" * 128: "v" * 256}, {"team": ""}],
     [{"": "v"}, {"k" * 129: "v"}, {"team": "v" * 257}, {"aws:team": "x"}, {"AWS:x": "y"}, {"team": 1},
      {1: "x"}, ["team"], "team=payments"]),
    ("spec.keys", [[]], ["alias/x", {"alias": "alias/x"}, None]),
    ("spec.xks.credential.accessKeyId",
     ["ABCDEFGHIJKLMNOPQRST", "A" * 30, "AKIA2345672345672345", {"fromEnv": "ID"}, {"fromFile": "id.txt"}],
     ["ABCDEFGHIJKLMNOPQRS", "A" * 31, "abcdefghijklmnopqrst", "ABCDEFGHIJKLMNOPQRS1", 12345678901234567890, None]),
    ("spec.xks.credential.secretAccessKey", [{"fromEnv": "S"}, {"fromFile": "s.txt"}],
     ["inline", {"fromEnv": "S", "fromFile": "s"}, {}, {"fromEnv": "1BAD"}, {"fromEnv": ""}, {"other": "x"},
      {"fromFile": ""}, 5]),
]


@pytest.mark.parametrize(("path", "value"), [(p, v) for p, good, _ in FIELD_CASES for v in good])
def test_valid_value_accepted(path: str, value: Any) -> None:
    assert errors(doc(XKS_DOC, **{path: value})) == []


@pytest.mark.parametrize(("path", "value"), [(p, v) for p, _, bad in FIELD_CASES for v in bad])
def test_invalid_value_rejected_at_its_field(path: str, value: Any) -> None:
    found = errors(doc(XKS_DOC, **{path: value}))
    assert found, f"{path}={value!r} was accepted"
    want = ".".join(str(p) for p in parse_field_path(path))
    assert all(loc.startswith(want) for loc, _, _ in found), found


@pytest.mark.parametrize(("path", "valid", "invalid"), [
    ("spec.xks.vpcEndpointServiceName",
     ["com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0", "eu.amazonaws.vpce.eu-central-1.vpce-svc-1",
      "com.amazonaws.vpce.us-gov-west-1.vpce-svc-abc"],
     ["vpce-svc-0123456789abcdef0", "com.amazonaws.vpce.us-east-1.vpce-svc-ABC", "org.amazonaws.vpce.us-east-1.vpce-svc-1",
      "com.amazonaws.vpce.useast1.vpce-svc-1", "com.amazonaws.vpce.us-east-1.vpce-svc-" + "0" * 30, 1]),
    ("spec.xks.vpcEndpointServiceOwner", ["111122223333"], ["11112222333", "abc", 111122223333]),
])
def test_vpc_fields(path: str, valid: list[Any], invalid: list[Any]) -> None:
    base = doc(XKS_DOC, **{"spec.xks": VPC_XKS})
    for value in valid:
        assert errors(doc(base, **{path: value})) == [], value
    for value in invalid:
        assert error_locs(doc(base, **{path: value})) == {".".join(parse_field_path(path))}, value  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "valid", "invalid"), [
    ("spec.cloudHsm.clusterId", ["cluster-jxhlf7644ne", "cluster-" + "a" * 16, "cluster-ABCDEFGHIJK"],
     ["cluster-1a23b4cdefg", "cluster-abc", "cluster-" + "a" * 17, "jxhlf7644ne", "cluster-jxhlf764-ne", 5]),
    ("spec.cloudHsm.trustAnchorCertificate",
     ["-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----", {"fromEnv": "CA"}, {"fromFile": "ca.crt"}],
     ["not a certificate", "", "-----BEGIN CERTIFICATE-----" + "x" * 5000, 1, ["a"]]),
    ("spec.cloudHsm.keyStorePassword", [{"fromEnv": "P"}, {"fromFile": "p.txt"}], ["kmsuserpass", 1234567, {}]),
])
def test_cloudhsm_fields(path: str, valid: list[Any], invalid: list[Any]) -> None:
    for value in valid:
        assert errors(doc(HSM_DOC, **{path: value})) == [], value
    for value in invalid:
        locs = error_locs(doc(HSM_DOC, **{path: value}))
        assert locs and all(loc.startswith(path) for loc in locs), (value, locs)


def test_string_where_mapping_expected_is_an_error_not_coerced() -> None:
    for path in ("metadata", "spec", "spec.xks", "spec.xks.credential", "spec.deletion", "spec.keys[0]"):
        assert error_locs(doc(XKS_DOC, **{path: "some text"})) == {".".join(map(str, parse_field_path(path)))}, path


# ---------------------------------------------------------------------------- unknown fields everywhere


@pytest.mark.parametrize("parent", ["", "metadata", "spec", "spec.xks", "spec.xks.credential", "spec.keys[0]",
                                    "spec.deletion", "spec.xks.credential.secretAccessKey"])
def test_unknown_field_is_rejected_everywhere(parent: str) -> None:
    data = copy.deepcopy(XKS_DOC)
    target: Any = data
    for part in parse_field_path(parent) if parent else ():
        target = target[part]
    target["surprise"] = 1
    found = errors(data)
    assert [(t) for _, t, _ in found] == ["extra_forbidden"]
    assert found[0][0].endswith("surprise")


def test_cloudhsm_secret_ref_rejects_unknown_field() -> None:
    data = doc(HSM_DOC, **{"spec.cloudHsm.keyStorePassword": {"fromEnv": "P", "value": "x"}})
    assert [t for _, t, _ in errors(data)] == ["extra_forbidden"]


# ---------------------------------------------------------------------------- rules across fields


def test_xks_store_requires_xks_settings() -> None:
    data = doc(XKS_DOC, **{"spec.xks": _DELETE})
    assert errors(data) == [("spec.xks", "missing", errors(data)[0][2])]
    for field in ("connectivity", "uriEndpoint", "uriPath", "credential"):
        assert error_locs(doc(XKS_DOC, **{f"spec.xks.{field}": _DELETE})) == {f"spec.xks.{field}"}
    for field in ("accessKeyId", "secretAccessKey"):
        assert error_locs(doc(XKS_DOC, **{f"spec.xks.credential.{field}": _DELETE})) == {
            f"spec.xks.credential.{field}"}
    assert error_locs(doc(XKS_DOC, **{"spec.xks": None})) == {"spec.xks"}


def test_cloudhsm_store_requires_cloudhsm_settings() -> None:
    assert error_locs(doc(HSM_DOC, **{"spec.cloudHsm": _DELETE})) == {"spec.cloudHsm"}
    for field in ("clusterId", "trustAnchorCertificate", "keyStorePassword"):
        assert error_locs(doc(HSM_DOC, **{f"spec.cloudHsm.{field}": _DELETE})) == {f"spec.cloudHsm.{field}"}


def test_type_is_required() -> None:
    assert error_locs(doc(XKS_DOC, **{"spec.type": _DELETE})) == {"spec.type"}


def test_settings_of_the_other_type_are_rejected() -> None:
    xks_with_hsm = doc(XKS_DOC, **{"spec.cloudHsm": HSM_DOC["spec"]["cloudHsm"]})
    assert [(loc, t) for loc, t, _ in errors(xks_with_hsm)] == [("spec.cloudHsm", "not_allowed")]
    hsm_with_xks = doc(HSM_DOC, **{"spec.xks": XKS_DOC["spec"]["xks"]})
    assert [(loc, t) for loc, t, _ in errors(hsm_with_xks)] == [("spec.xks", "not_allowed")]
    # even on a store being decommissioned
    absent = doc(hsm_with_xks, **{"spec.state": "absent"})
    assert error_locs(absent) == {"spec.xks"}


def test_xks_keys_need_xks_key_id_and_alias_is_optional() -> None:
    assert error_locs(doc(XKS_DOC, **{"spec.keys": [{"alias": "alias/x"}]})) == {"spec.keys.0.xksKeyId"}
    assert errors(doc(XKS_DOC, **{"spec.keys": [{"xksKeyId": "k"}]})) == []


def test_cloudhsm_keys_need_alias_and_refuse_xks_key_id() -> None:
    assert error_locs(doc(HSM_DOC, **{"spec.keys": [{"description": "d"}]})) == {"spec.keys.0.alias"}
    found = errors(doc(HSM_DOC, **{"spec.keys": [{"alias": "alias/x", "xksKeyId": "k"}]}))
    assert [(loc, t) for loc, t, _ in found] == [("spec.keys.0.xksKeyId", "not_allowed")]


def test_vpc_connectivity_requires_service_name_and_public_forbids_it() -> None:
    no_name = dict(VPC_XKS)
    del no_name["vpcEndpointServiceName"]
    assert error_locs(doc(XKS_DOC, **{"spec.xks": no_name})) == {"spec.xks.vpcEndpointServiceName"}
    public_with_name = doc(XKS_DOC, **{"spec.xks.vpcEndpointServiceName": VPC_XKS["vpcEndpointServiceName"]})
    assert [(loc, t) for loc, t, _ in errors(public_with_name)] == [("spec.xks.vpcEndpointServiceName", "not_allowed")]
    public_with_owner = doc(XKS_DOC, **{"spec.xks.vpcEndpointServiceOwner": "111122223333"})
    assert error_locs(public_with_owner) == {"spec.xks.vpcEndpointServiceOwner"}


def test_duplicate_xks_key_id_and_alias_within_a_store() -> None:
    keys = [{"xksKeyId": "k1", "alias": "alias/a"}, {"xksKeyId": "k1", "alias": "alias/b"},
            {"xksKeyId": "k2", "alias": "alias/a"}]
    found = errors(doc(XKS_DOC, **{"spec.keys": keys}))
    assert sorted(loc for loc, _, _ in found) == ["spec.keys.1.xksKeyId", "spec.keys.2.alias"]
    assert any("keys[0] already uses it" in msg for _, _, msg in found)


def test_all_problems_reported_at_once() -> None:
    data = doc(XKS_DOC, **{"spec.xks.uriPath": "/foo", "spec.keys": [{"alias": "alias/x"}],
                           "spec.cloudHsm": {}, "metadata.name": ""})
    assert error_locs(data) == {"spec.xks.uriPath", "spec.keys.0.xksKeyId", "spec.cloudHsm", "metadata.name"}


# ---------------------------------------------------------------------------- secrets in the models


def test_inline_secret_is_refused_and_never_kept_in_the_error() -> None:
    secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdefg"
    for data in (doc(XKS_DOC, **{"spec.xks.credential.secretAccessKey": secret}),
                 doc(HSM_DOC, **{"spec.cloudHsm.keyStorePassword": secret})):
        with pytest.raises(ValidationError) as info:
            KeyStoreManifest.model_validate(data)
        assert [e["type"] for e in info.value.errors()] == ["inline_secret"]
        assert secret not in str(info.value)
        assert secret not in repr(info.value.errors())
        assert secret not in info.value.json()


def test_secret_not_kept_in_errors_of_the_enclosing_models() -> None:
    secret = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdefg"
    data = doc(XKS_DOC, **{"spec.xks.credential.secretAccessKey": secret, "spec.type": _DELETE, "bogus": 1})
    with pytest.raises(ValidationError) as info:
        KeyStoreManifest.model_validate(data)
    assert secret not in repr(info.value.errors()) and secret not in str(info.value)


def test_sub_models_refuse_inline_secrets_standalone() -> None:
    with pytest.raises(ValidationError) as info:
        XksCredential.model_validate({"accessKeyId": "ABCDEFGHIJKLMNOPQRST", "secretAccessKey": "s3cr3t-value"})
    assert "s3cr3t-value" not in repr(info.value.errors())
    with pytest.raises(ValidationError):
        CloudHsmSpec.model_validate({"keyStorePassword": "s3cr3t-value"})


def test_secret_ref_needs_exactly_one_source() -> None:
    assert SecretRef.model_validate({"fromEnv": "A"}).describe() == "environment variable A"
    assert SecretRef.model_validate({"fromFile": "a.txt"}).describe() == "file 'a.txt'"
    for bad in ({}, {"fromEnv": "A", "fromFile": "b"}, {"fromEnv": None}):
        with pytest.raises(ValidationError):
            SecretRef.model_validate(bad)


def test_exported_model_names() -> None:
    assert ManagedKey.model_fields.keys() == {"alias", "xksKeyId", "description", "enabled", "tags"}
    assert XksSpec.model_fields.keys() == {"connectivity", "uriEndpoint", "uriPath", "vpcEndpointServiceName",
                                           "vpcEndpointServiceOwner", "credential"}
