"""The JSON 1.1 wire protocol, as KMS speaks it: one test per symptom of issue 13 (each failed
before the protocol layer), against the emulator served over HTTP and driven by a raw client.

JSON 1.1 (the protocol botocore's model names for KMS: ``"protocol": "json"``, ``"jsonVersion":
"1.1"``, ``"targetPrefix": "TrentService"``): a POST whose ``X-Amz-Target`` is
``TrentService.<Operation>``, a JSON object as the body, ``Content-Type: application/x-amz-json-1.1``
both ways, errors as ``{"__type": ..., "message": ...}``.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest

from tests.sandbox.model_check import operations, response_problems
from tests.sandbox.served import RawKms, reset_account


@pytest.fixture
def raw(served) -> Iterator[RawKms]:
    reset_account()
    client = RawKms(served[0])
    try:
        yield client
    finally:
        client.close()


def error_of(response: tuple[int, dict[str, str], bytes]) -> tuple[int, str, str]:
    status, headers, body = response
    assert headers["Content-Type"] == "application/x-amz-json-1.1", (headers, body[:200])
    document = json.loads(body)
    return status, document["__type"], document.get("message", "")


def test_every_operation_of_the_model_has_a_handler():
    """One protocol layer for every KMS operation: the emulator's handler or moto's."""
    from reconciler.sandbox.handlers import HANDLERS
    from reconciler.sandbox.protocol import moto_handler

    unanswered = [op for op in operations() if op not in HANDLERS and moto_handler(op) is None]
    assert unanswered == []


def test_a_success_is_sent_as_application_x_amz_json_1_1(raw):
    """JSON 1.1 answers with Content-Type application/x-amz-json-1.1 (it was text/html)."""
    status, headers, body = raw.call("ListKeys", {})
    assert status == 200 and headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(body) == {"Keys": [], "Truncated": False}


def test_an_operation_with_no_output_answers_an_empty_object(raw):
    key_id = raw.ok("CreateKey")["KeyMetadata"]["KeyId"]
    status, headers, body = raw.call("DisableKey", {"KeyId": key_id})
    assert (status, headers["Content-Type"], json.loads(body)) == (200, "application/x-amz-json-1.1", {})


def test_ordinary_key_metadata_has_no_null_members(raw):
    """KeyMetadata.KeyUsage: "The default value is ENCRYPT_DECRYPT"; MultiRegion: "The default
    value is False"; SigningAlgorithms only for signing keys. None of them is ever null."""
    status, headers, body = raw.call("CreateKey", {})
    metadata = json.loads(body)["KeyMetadata"]
    assert None not in metadata.values()
    assert metadata["KeyUsage"] == "ENCRYPT_DECRYPT" and metadata["MultiRegion"] is False
    assert "SigningAlgorithms" not in metadata and metadata["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert response_problems("CreateKey", status, headers, body) == []


def test_key_in_a_custom_key_store_has_no_signing_algorithms_member(raw, served):
    """A key in a custom key store is a symmetric encryption key: SigningAlgorithms is omitted,
    not null ("null is not a valid list")."""
    from tests.sandbox.helpers import xks_params

    settings = served[1]
    store_id = raw.ok("CreateCustomKeyStore", xks_params("s"))["CustomKeyStoreId"]
    raw.ok("ConnectCustomKeyStore", {"CustomKeyStoreId": store_id})
    settings.clock.advance(settings.connect_delay_seconds)
    key_id = raw.ok("CreateKey", {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": store_id, "XksKeyId": "x-1"})["KeyMetadata"]["KeyId"]
    status, headers, body = raw.call("DescribeKey", {"KeyId": key_id})
    assert b"null" not in body
    assert response_problems("DescribeKey", status, headers, body) == []


def test_an_unknown_operation_is_400_unknown_operation_exception(raw):
    """An X-Amz-Target that names no operation of the model (it was a 500 HTML page)."""
    assert error_of(raw.call("Bogus", {}))[:2] == (400, "UnknownOperationException")
    assert error_of(raw.call("ListKeys", {}, target="NotTrentService.ListKeys"))[:2] == (400, "UnknownOperationException")
    assert error_of(raw.call("ListKeys", {}, target=""))[:2] == (400, "UnknownOperationException")


@pytest.mark.parametrize(
    "operation, member",
    [("GenerateRandom", "numberOfBytes"), ("Encrypt", "keyId"), ("CreateAlias", "aliasName")],
)
def test_a_missing_required_member_is_a_validation_exception(raw, operation, member):
    """GenerateRandom NumberOfBytes: "This parameter is required." (GenerateRandom {} was a 500)."""
    status, name, message = error_of(raw.call(operation, {}))
    assert (status, name) == (400, "ValidationException")
    assert f"Value null at '{member}' failed to satisfy constraint: Member must not be null" in message


def test_retire_grant_needs_a_token_or_a_key_and_grant_id(raw):
    """RetireGrant: "To identify the grant to retire, use a grant token, or both the grant ID and
    a key identifier" (RetireGrant {} was a 500)."""
    assert error_of(raw.call("RetireGrant", {}))[:2] == (400, "ValidationException")


@pytest.mark.parametrize("body", [b'{"KeyId": ', b"{", b"[]", b"null", b'"x"', b"42", b"\xff\xfe"],
                         ids=["truncated", "open-brace", "array", "null", "string", "number", "not-utf8"])
def test_a_body_that_is_not_a_json_object_is_a_serialization_exception(raw, body):
    """(A truncated or non-object body was read as {} or ignored.)"""
    assert error_of(raw.call("ListKeys", body))[:2] == (400, "SerializationException")


def test_a_member_of_the_wrong_type_is_a_serialization_exception(raw):
    """JSON 1.1 cannot read a string where the model has an integer, nor an object where it has a
    string; constraints of well-typed values are ValidationException."""
    assert error_of(raw.call("ListKeys", {"Limit": "5"}))[:2] == (400, "SerializationException")
    assert error_of(raw.call("DescribeKey", {"KeyId": {"id": 1}}))[:2] == (400, "SerializationException")
    assert error_of(raw.call("Encrypt", {"KeyId": "k", "Plaintext": "not base64!"}))[:2] == (400, "SerializationException")
    status, name, message = error_of(raw.call("DescribeKey", {"KeyId": "x" * 2049}))
    assert (status, name) == (400, "ValidationException")
    assert "at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048" in message


def test_an_empty_body_is_an_empty_input(raw):
    status, _, body = raw.call("ListKeys", b"")
    assert status == 200 and json.loads(body)["Keys"] == []


def test_unknown_members_are_ignored_and_nulls_are_absent(raw):
    assert raw.call("ListKeys", {"Limit": None, "Whatever": 1})[0] == 200


def test_an_unsigned_request_is_403_missing_authentication_token(raw):
    """The Common Errors: MissingAuthenticationToken, "The request must contain either a valid
    (registered) AWS access key ID or X.509 certificate", HTTP 403 (it was routed to S3 and
    answered in XML)."""
    assert error_of(raw.call("ListKeys", {}, sign=False)) == (403, "MissingAuthenticationTokenException", "Missing Authentication Token")


def test_a_malformed_signature_is_incomplete_signature(raw):
    """The Common Errors: IncompleteSignature, "The request signature does not conform to AWS
    standards" (HTTP 400)."""
    status, name, message = error_of(raw.call("ListKeys", {}, sign=False, headers={"Authorization": "Bearer abc"}))
    assert (status, name) == (400, "IncompleteSignatureException")
    assert "'Credential'" in message and "abc" not in message


def test_errors_are_json_with_the_type_and_status(raw):
    status, headers, body = raw.call("DescribeKey", {"KeyId": "11111111-2222-3333-4444-555555555555"})
    assert status == 400 and headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(body)["__type"] == "NotFoundException"
    assert response_problems("DescribeKey", status, headers, body) == []
