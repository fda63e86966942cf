"""No request reaches a 5xx: requests generated from the API model for every KMS operation.

For each operation of the model, hypothesis builds request bodies from its input shape: valid
values (and, for members that name a resource - KeyId, CustomKeyStoreId, CiphertextBlob,
GrantToken... - the resources of a small world created first), boundary values (lengths and
ranges one past the model's limits), values of the wrong JSON type, nulls, missing members,
unknown members, and bodies that are not JSON objects at all. Each is sent over HTTP to the served
emulator; every answer must be a well-formed 2xx or 4xx (tests/sandbox/model_check.py). No fault
is injected, so no 5xx is acceptable.

``RECONCILER_PROPERTY_EXAMPLES`` sets the examples per operation (default 8, so a few hundred in
all, derandomized so CI sees the same ones); setting it also lets hypothesis explore at random.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.sandbox.seed import create_cloudhsm_cluster, trust_anchor
from tests.sandbox.helpers import ACCOUNT_ID, CREDENTIAL, KEY_STORE_PASSWORD, REGION
from tests.sandbox.model_check import model, operations, response_problems
from tests.sandbox.served import RawKms, reset_account

EXAMPLES = int(os.environ.get("RECONCILER_PROPERTY_EXAMPLES") or 8)
EXPLORE = bool(os.environ.get("RECONCILER_PROPERTY_EXAMPLES"))

MALFORMED_BODIES = [b"{", b'{"KeyId": ', b"\xff\xfe{}", b"null", b"[]", b'"text"', b"12", b"{}}", b"{'a': 1}", b" "]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def build_world(client: RawKms, settings: Any, *, import_token: bool) -> dict[str, list[Any]]:
    """A few resources of every kind, and the names by which requests can refer to them."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    xks = client.ok("CreateCustomKeyStore", {
        "CustomKeyStoreName": "xks", "CustomKeyStoreType": "EXTERNAL_KEY_STORE", "XksProxyConnectivity": "PUBLIC_ENDPOINT",
        "XksProxyUriEndpoint": "https://proxy.example.com", "XksProxyUriPath": "/kms/xks/v1",
        "XksProxyAuthenticationCredential": CREDENTIAL})["CustomKeyStoreId"]
    hsm = client.ok("CreateCustomKeyStore", {
        "CustomKeyStoreName": "hsm", "CloudHsmClusterId": cluster_id,
        "TrustAnchorCertificate": trust_anchor(ACCOUNT_ID, REGION, cluster_id), "KeyStorePassword": KEY_STORE_PASSWORD,
    })["CustomKeyStoreId"]
    idle = client.ok("CreateCustomKeyStore", {
        "CustomKeyStoreName": "idle", "CustomKeyStoreType": "EXTERNAL_KEY_STORE", "XksProxyConnectivity": "PUBLIC_ENDPOINT",
        "XksProxyUriEndpoint": "https://idle.example.com", "XksProxyUriPath": "/kms/xks/v1",
        "XksProxyAuthenticationCredential": CREDENTIAL})["CustomKeyStoreId"]
    for store in (xks, hsm):
        client.ok("ConnectCustomKeyStore", {"CustomKeyStoreId": store})
    settings.clock.advance(settings.connect_delay_seconds)
    created = [
        {},
        {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
        {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
        {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"},
        {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
        {"Origin": "EXTERNAL"},
        {"MultiRegion": True},
        {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": xks, "XksKeyId": "ext-1"},
        {"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": hsm},
    ]
    keys = [client.ok("CreateKey", params)["KeyMetadata"] for params in created]
    symmetric = keys[0]["KeyId"]
    client.ok("CreateAlias", {"AliasName": "alias/world", "TargetKeyId": symmetric})
    client.ok("DisableKey", {"KeyId": keys[4]["KeyId"]})
    client.ok("TagResource", {"KeyId": symmetric, "Tags": [{"TagKey": f"t{i}", "TagValue": "v"} for i in range(3)]})
    ciphertext = client.ok("Encrypt", {"KeyId": symmetric, "Plaintext": b64(b"secret")})["CiphertextBlob"]
    grant = client.ok("CreateGrant", {"KeyId": symmetric, "GranteePrincipal": "arn:aws:iam::123456789012:role/a",
                                      "RetiringPrincipal": "arn:aws:iam::123456789012:role/r", "Operations": ["Decrypt"]})
    world: dict[str, list[Any]] = {
        "key": [k["KeyId"] for k in keys] + [k["Arn"] for k in keys] + ["alias/world", "alias/aws/ebs"],
        "store": [xks, hsm, idle],
        "ciphertext": [ciphertext],
        "grant_token": [grant["GrantToken"]],
        "grant_id": [grant["GrantId"]],
        "alias": ["alias/world", "alias/new", "alias/aws/x"],
        "principal": ["arn:aws:iam::123456789012:role/r"],
        "policy": [json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]}),
                   json.dumps({"Statement": "x"}), "not json", "[1]"],
        "import_token": [],
    }
    if import_token:
        world["import_token"].append(client.ok("GetParametersForImport", {
            "KeyId": keys[5]["KeyId"], "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"})["ImportToken"])
    return world


RESOURCES = {
    "KeyId": "key", "TargetKeyId": "key", "DestinationKeyId": "key", "SourceKeyId": "key",
    "CustomKeyStoreId": "store", "CiphertextBlob": "ciphertext", "GrantToken": "grant_token", "GrantId": "grant_id",
    "AliasName": "alias", "RetiringPrincipal": "principal", "Policy": "policy", "ImportToken": "import_token",
}


def _text(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=low, max_size=min(high, max(low, 40)))


def valid(shape: Any, world: dict[str, list[Any]], name: str = "", depth: int = 0) -> st.SearchStrategy[Any]:
    kind, meta = shape.type_name, shape.metadata
    low, high = meta.get("min", 0), meta.get("max", 10**6)
    generic: st.SearchStrategy[Any]
    if kind == "string":
        if shape.enum:
            generic = st.sampled_from(list(shape.enum))
        elif meta.get("pattern"):
            pattern = re.compile(meta["pattern"], re.ASCII)
            generic = st.from_regex(pattern, fullmatch=True).filter(lambda s: low <= len(s) <= high)
        else:
            generic = _text(low, high)
    elif kind in ("integer", "long"):
        generic = st.integers(meta.get("min", -(2**31)), meta.get("max", 2**31 - 1))
    elif kind == "boolean":
        generic = st.booleans()
    elif kind == "timestamp":
        generic = st.integers(1_700_000_000, 1_900_000_000)
    elif kind == "blob":
        generic = st.binary(min_size=low, max_size=min(high, 64)).map(b64)
    elif kind == "list":
        generic = st.lists(valid(shape.member, world, name, depth + 1), min_size=low, max_size=min(high, 3))
    elif kind == "map":
        generic = st.dictionaries(valid(shape.key, world, depth=depth + 1), valid(shape.value, world, depth=depth + 1), max_size=3)
    elif kind == "structure":
        generic = structure(shape, world, depth + 1)
    else:
        generic = st.none()
    refs = world.get(RESOURCES.get(name, ""), [])
    if refs and kind in ("string", "blob"):
        return st.one_of(st.sampled_from(refs), st.sampled_from(refs), generic)
    return generic


def boundary(shape: Any) -> st.SearchStrategy[Any]:
    kind, meta = shape.type_name, shape.metadata
    values: list[Any] = []
    if kind == "string":
        if "min" in meta and meta["min"] > 0:
            values.append("a" * (meta["min"] - 1))
        if "max" in meta:
            values.append("a" * (meta["max"] + 1))
        values.append("\u00e9\u0000\n")
    elif kind in ("integer", "long"):
        values += [meta.get("min", 0) - 1, meta.get("max", 2**31 - 1) + 1, 2**31, -(2**31) - 1, 0]
    elif kind == "blob":
        values += [""] + ([b64(b"x" * (meta["max"] + 1))] if "max" in meta else [])
    elif kind == "list":
        values += [[]] + ([["a"] * (meta["max"] + 1)] if "max" in meta else [])
    elif kind == "timestamp":
        values += [0, -1, 10**12]
    return st.sampled_from(values) if values else st.just(None)


def wrong_type(shape: Any) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    choices: list[Any] = [[1, 2], {"a": 1}, True, 1.5, "text", 7, "not base64!"]
    keep = {
        "string": lambda v: not isinstance(v, str), "integer": lambda v: not isinstance(v, int) or isinstance(v, bool),
        "long": lambda v: not isinstance(v, int) or isinstance(v, bool), "boolean": lambda v: not isinstance(v, bool),
        "list": lambda v: not isinstance(v, list), "map": lambda v: not isinstance(v, dict),
        "structure": lambda v: not isinstance(v, dict), "timestamp": lambda v: isinstance(v, (str, list, dict, bool)),
        "blob": lambda v: v == "not base64!" or not isinstance(v, str),
    }.get(kind, lambda v: True)
    return st.sampled_from([v for v in choices if keep(v)])


def member(shape: Any, world: dict[str, list[Any]], name: str, depth: int) -> st.SearchStrategy[Any]:
    good = valid(shape, world, name, depth)
    return st.one_of(good, good, good, good, boundary(shape), wrong_type(shape), st.none())


def structure(shape: Any, world: dict[str, list[Any]], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    required = set(shape.required_members)

    @st.composite
    def build(draw: Any) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, member_shape in shape.members.items():
            if depth > 3:
                break
            chance = draw(st.integers(0, 9))
            if (name in required and chance < 9) or (name not in required and chance < 4):
                body[name] = draw(member(member_shape, world, name, depth) if depth == 0 else valid(member_shape, world, name, depth))
        if draw(st.integers(0, 19)) == 0:
            body["NotAMember"] = "ignored"
        return body

    return build()


def request(operation: str, world: dict[str, list[Any]]) -> st.SearchStrategy[bytes]:
    shape = model().operation_model(operation).input_shape
    as_json = structure(shape, world).map(lambda body: json.dumps(body).encode())
    return st.one_of(*([as_json] * 9), st.sampled_from(MALFORMED_BODIES))


@pytest.mark.parametrize("operation", operations())
def test_no_generated_request_reaches_a_5xx(served, operation):
    url, sandbox_settings = served
    reset_account()
    client = RawKms(url)
    try:
        world = build_world(client, sandbox_settings, import_token=operation == "ImportKeyMaterial")

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=not EXPLORE, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(body=request(operation, world))
        def one_request(body: bytes) -> None:
            status, headers, payload = client.call(operation, body)
            assert status < 500, f"{operation} {body[:300]!r}: HTTP {status} {payload[:300]!r}"
            problems = response_problems(operation, status, headers, payload)
            assert not problems, f"{operation} {body[:300]!r}: {problems}"

        one_request()
    finally:
        client.close()
