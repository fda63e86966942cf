"""The four calls of the proxy API and their validation, handled without a socket."""

from __future__ import annotations

import base64
import json

import pytest

from reconciler.sandbox.xks_proxy import Request, XksProxy
from tests.xks_proxy.helpers import NOW, URI_PATH, handle_signed, make_config, metadata

b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
unb64 = base64.b64decode


@pytest.fixture
def proxy() -> XksProxy:
    return XksProxy(make_config(), clock=lambda: NOW)


def encrypt_body(plaintext: bytes = b"Hello World!", aad: bytes | None = None, **extra) -> dict:
    body = {"requestMetadata": metadata("Encrypt"), "plaintext": b64(plaintext), "encryptionAlgorithm": "AES_GCM",
            **extra}
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    return body


def decrypt_body(encrypted: dict, aad: bytes | None = None, **extra) -> dict:
    body = {"requestMetadata": metadata("Decrypt"), "encryptionAlgorithm": "AES_GCM",
            **{k: encrypted[k] for k in ("ciphertext", "ciphertextMetadata", "initializationVector",
                                         "authenticationTag") if k in encrypted}, **extra}
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    return body


def error(response) -> tuple[int, str]:
    return response.status, response.json()["errorName"]


def test_health_reports_the_proxy_and_the_ekm_fleet(proxy: XksProxy) -> None:
    response = handle_signed(proxy, "/health", {"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "X"}})
    assert response.status == 200
    assert response.json() == {
        "xksProxyFleetSize": 1, "xksProxyVendor": "Reconciler", "xksProxyModel": "Reconciler sandbox XKS proxy 1.0",
        "ekmVendor": "Test EKM vendor",
        "ekmFleetDetails": [{"id": "hsm-1", "model": "Test HSM 2.0", "healthStatus": "ACTIVE"},
                            {"id": "hsm-2", "model": "Test HSM 2.0", "healthStatus": "ACTIVE"}],
    }
    assert (proxy.calls[-1].kms_operation, proxy.calls[-1].kms_request_id) == ("X", "r")


def test_health_does_not_validate_its_body(proxy: XksProxy) -> None:
    assert handle_signed(proxy, "/health", b"not json").status == 200


@pytest.mark.parametrize("key_id, spec, usage, status", [
    ("aes-key", "AES_256", ["ENCRYPT", "DECRYPT"], "ENABLED"),
    ("encrypt-only", "AES_256", ["ENCRYPT"], "ENABLED"),
    ("no-usage", "AES_256", [], "ENABLED"),
    ("disabled-key", "AES_256", ["ENCRYPT", "DECRYPT"], "DISABLED"),
    ("rsa-key", "RSA_2048", ["ENCRYPT", "DECRYPT"], "ENABLED"),
])
def test_metadata_reports_each_key_as_configured(proxy: XksProxy, key_id, spec, usage, status) -> None:
    response = handle_signed(proxy, f"/keys/{key_id}/metadata", {"requestMetadata": metadata("CreateKey")})
    assert response.status == 200
    assert response.json() == {"keySpec": spec, "keyUsage": usage, "keyStatus": status}


def test_round_trip_with_aad_and_the_integrity_value(proxy: XksProxy) -> None:
    plaintext, aad = b"\x00data key bytes\xff" * 10, b"project=nile,department=marketing"
    response = handle_signed(proxy, "/keys/aes-key/encrypt",
                             encrypt_body(plaintext, aad, ciphertextDataIntegrityValueAlgorithm="SHA_256"))
    assert response.status == 200, response.body
    out = response.json()
    assert len(unb64(out["ciphertext"])) == len(plaintext) and unb64(out["ciphertext"]) != plaintext
    assert len(unb64(out["initializationVector"])) == 12 and len(unb64(out["authenticationTag"])) == 16
    assert 0 < len(unb64(out["ciphertextMetadata"])) <= 20
    import hashlib
    expected = hashlib.sha256(aad + unb64(out["ciphertextMetadata"]) + unb64(out["initializationVector"])
                              + unb64(out["ciphertext"]) + unb64(out["authenticationTag"])).digest()
    assert unb64(out["ciphertextDataIntegrityValue"]) == expected

    decrypted = handle_signed(proxy, "/keys/aes-key/decrypt", decrypt_body(out, aad))
    assert decrypted.status == 200, decrypted.body
    assert unb64(decrypted.json()["plaintext"]) == plaintext


def test_no_integrity_value_unless_asked(proxy: XksProxy) -> None:
    out = handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body()).json()
    assert "ciphertextDataIntegrityValue" not in out


@pytest.mark.parametrize("tamper", [
    lambda body: {**body, "additionalAuthenticatedData": b64(b"other aad")},
    lambda body: {k: v for k, v in body.items() if k != "additionalAuthenticatedData"},
    lambda body: {k: v for k, v in body.items() if k != "ciphertextMetadata"},
    lambda body: {**body, "ciphertextMetadata": b64(b"rxp-aad-v2")},
    lambda body: {**body, "authenticationTag": b64(bytes(16))},
    lambda body: {**body, "ciphertext": b64(bytes(len(unb64(body["ciphertext"]))))},
    lambda body: {**body, "initializationVector": b64(bytes(16))},
])
def test_decrypt_of_anything_changed_is_invalid_ciphertext(proxy: XksProxy, tamper) -> None:
    out = handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body(aad=b"context")).json()
    response = handle_signed(proxy, "/keys/aes-key/decrypt", tamper(decrypt_body(out, b"context")))
    assert error(response) == (400, "InvalidCiphertextException")


def test_a_ciphertext_of_one_key_does_not_decrypt_under_another(proxy: XksProxy) -> None:
    out = handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body()).json()
    assert error(handle_signed(proxy, "/keys/decrypt-only/decrypt", decrypt_body(out))) == (
        400, "InvalidCiphertextException")


def test_key_material_follows_the_seed() -> None:
    seeded = dict(keyMaterialSeed="a seed of sixteen chars or more")
    first, second = (XksProxy(make_config(**seeded), clock=lambda: NOW) for _ in range(2))
    out = handle_signed(first, "/keys/aes-key/encrypt", encrypt_body()).json()
    assert handle_signed(second, "/keys/aes-key/decrypt", decrypt_body(out)).status == 200
    unseeded = XksProxy(make_config(), clock=lambda: NOW)  # a random seed: another proxy's keys
    assert error(handle_signed(unseeded, "/keys/aes-key/decrypt", decrypt_body(out)))[1] == "InvalidCiphertextException"


@pytest.mark.parametrize("key_id, call, expected", [
    ("encrypt-only", "decrypt", (400, "InvalidKeyUsageException")),
    ("decrypt-only", "encrypt", (400, "InvalidKeyUsageException")),
    ("no-usage", "encrypt", (400, "InvalidKeyUsageException")),
    ("no-usage", "decrypt", (400, "InvalidKeyUsageException")),
    ("rsa-key", "encrypt", (400, "InvalidKeyUsageException")),
    ("disabled-key", "encrypt", (400, "InvalidStateException")),
    ("disabled-key", "decrypt", (400, "InvalidStateException")),
    ("missing-key", "encrypt", (404, "KeyNotFoundException")),
    ("missing-key", "metadata", (404, "KeyNotFoundException")),
])
def test_key_level_refusals(proxy: XksProxy, key_id: str, call: str, expected) -> None:
    good = handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body()).json()
    body = {"encrypt": encrypt_body(), "decrypt": decrypt_body(good),
            "metadata": {"requestMetadata": metadata("DescribeKey")}}[call]
    assert error(handle_signed(proxy, f"/keys/{key_id}/{call}", body)) == expected


def test_keys_change_at_runtime(proxy: XksProxy) -> None:
    proxy.update_key("aes-key", status="DISABLED")
    assert error(handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body()))[1] == "InvalidStateException"
    proxy.update_key("new-key", usage=["ENCRYPT"])
    assert handle_signed(proxy, "/keys/new-key/encrypt", encrypt_body()).status == 200


MISSING_META = {"plaintext": b64(b"x"), "encryptionAlgorithm": "AES_GCM"}


@pytest.mark.parametrize("body, message", [
    (b"{not json", "the request body is not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (MISSING_META, "requestMetadata is required"),
    ({**encrypt_body(), "requestMetadata": {"kmsOperation": "Encrypt"}}, "requestMetadata.kmsRequestId is required"),
    ({**encrypt_body(), "requestMetadata": {**metadata(), "kmsKeyArn": None}}, "requestMetadata.kmsKeyArn is required"),
    ({**encrypt_body(), "requestMetadata": {**metadata(), "awsSourceVpc": 7}}, "awsSourceVpc must be a string"),
    ({**encrypt_body(), "encryptionAlgorithm": "AES_CBC"}, "encryptionAlgorithm must be AES_GCM"),
    ({**encrypt_body(), "plaintext": "not base64!"}, "plaintext is not valid Base64"),
    ({**encrypt_body(), "plaintext": ""}, "plaintext is empty"),
    ({**encrypt_body(), "plaintext": None}, "plaintext is required"),
    ({**encrypt_body(), "ciphertextDataIntegrityValueAlgorithm": "MD5"}, "must be SHA_256"),
])
def test_invalid_encrypt_requests_are_validation_exceptions(proxy: XksProxy, body, message: str) -> None:
    response = handle_signed(proxy, "/keys/aes-key/encrypt", body)
    assert error(response) == (400, "ValidationException")
    assert message in response.json()["errorMessage"]


def test_unknown_request_metadata_fields_and_operations_are_accepted(proxy: XksProxy) -> None:
    body = encrypt_body()
    body["requestMetadata"] = {**metadata("BulkEncrypt"), "kmsRecipientAttestationImageSha384": "abc"}
    assert handle_signed(proxy, "/keys/aes-key/encrypt", body).status == 200


@pytest.mark.parametrize("change, message", [
    (dict(initializationVector=b64(bytes(8))), "initializationVector is 8 bytes; it must be 12 or 16"),
    (dict(authenticationTag=b64(bytes(12))), "authenticationTag is 12 bytes; it must be 16"),
    (dict(ciphertextMetadata=b64(bytes(21))), "ciphertextMetadata is 21 bytes; at most 20"),
    (dict(ciphertext=""), "ciphertext is empty"),
    (dict(encryptionAlgorithm="RSAES_OAEP_SHA_256"), "encryptionAlgorithm must be AES_GCM"),
])
def test_invalid_decrypt_requests_are_validation_exceptions(proxy: XksProxy, change, message: str) -> None:
    out = handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body()).json()
    response = handle_signed(proxy, "/keys/aes-key/decrypt", {**decrypt_body(out), **change})
    assert error(response) == (400, "ValidationException")
    assert message in response.json()["errorMessage"]


def test_the_specification_sizes_are_supported_and_larger_ones_are_not(proxy: XksProxy) -> None:
    big = handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body(bytes(4300), bytes(8192)))
    assert big.status == 200
    assert handle_signed(proxy, "/keys/aes-key/decrypt", decrypt_body(big.json(), bytes(8192))).status == 200
    too_big = handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body(bytes(4301)))
    assert error(too_big) == (501, "UnsupportedOperationException")
    too_much_aad = handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body(b"x", bytes(8193)))
    assert error(too_much_aad) == (501, "UnsupportedOperationException")


def test_a_sixteen_byte_iv_is_accepted_on_decrypt(proxy: XksProxy) -> None:
    from reconciler.sandbox.xks_proxy import crypto

    material = crypto.derive_key(proxy._seed, "aes-key")
    sealed = crypto.encrypt(material, b"sixteen byte iv", b"", iv=bytes(range(16)))
    body = decrypt_body({"ciphertext": b64(sealed.ciphertext), "ciphertextMetadata": b64(sealed.metadata),
                         "initializationVector": b64(sealed.iv), "authenticationTag": b64(sealed.tag)})
    response = handle_signed(proxy, "/keys/aes-key/decrypt", body)
    assert response.status == 200 and unb64(response.json()["plaintext"]) == b"sixteen byte iv"


@pytest.mark.parametrize("path", [
    "!/kms/xks/v1/health",                      # the right API under another prefix
    "!/example/uri/path/prefix/kms/xks/v2/health",
    "/",
    "/healthz",
    "/keys/aes-key",
    "/keys/aes-key/sign",
    "/keys//encrypt",
    "/keys/aes-key/encrypt/more",
    "!/",
])
def test_unknown_paths_are_invalid_uri_path(proxy: XksProxy, path: str) -> None:
    response = handle_signed(proxy, path, {"requestMetadata": metadata()})
    assert error(response) == (404, "InvalidUriPathException")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_than_post_are_405(proxy: XksProxy, method: str) -> None:
    response = handle_signed(proxy, "/health", {}, method=method)
    assert response.status == 405
    assert ("Allow", "POST") in response.headers


def test_405_and_404_come_before_authentication(proxy: XksProxy) -> None:
    unsigned = Request("GET", URI_PATH + "/health", (("Host", "x"),), b"")
    assert proxy.handle(unsigned).status == 405
    assert proxy.handle(Request("POST", "/nope", (), b"")).json()["errorName"] == "InvalidUriPathException"
    assert proxy.handle(Request("POST", URI_PATH + "/health", (), b"")).status == 401


def test_error_messages_are_short_printable_ascii(proxy: XksProxy) -> None:
    response = handle_signed(proxy, "!" + URI_PATH + "/keys/" + "é" * 600 + "/x", {})
    message = response.json()["errorMessage"]
    assert len(message) < 512 and all(0x20 <= ord(c) <= 0x7E for c in message)


def test_calls_are_recorded_without_plaintext(proxy: XksProxy) -> None:
    handle_signed(proxy, "/keys/aes-key/encrypt", encrypt_body(b"top secret plaintext"))
    record = proxy.calls[-1]
    assert (record.kind, record.key_id, record.status, record.kms_operation) == ("encrypt", "aes-key", 200, "Encrypt")
    assert "top secret" not in repr(record) and b64(b"top secret plaintext") not in json.dumps(repr(record))


def test_a_failure_inside_the_proxy_is_an_internal_exception(proxy: XksProxy, monkeypatch) -> None:
    monkeypatch.setattr(proxy, "_health", lambda config: 1 / 0)
    response = handle_signed(proxy, "/health", {})
    assert error(response) == (500, "InternalException")
    assert (proxy.calls[-1].status, proxy.calls[-1].error_name) == (500, "InternalException")
