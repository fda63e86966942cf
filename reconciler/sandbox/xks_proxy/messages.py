"""The request bodies of the proxy API, parsed and validated.

Each ``parse_*`` function takes the raw body and returns a typed request, or raises
:class:`XksError` ``ValidationException`` naming the field (never echoing plaintext), or
``UnsupportedOperationException`` for a value larger than this proxy supports (the
specification's minimums: 4300 bytes of plaintext or ciphertext, 8192 bytes of AAD).
GetHealthStatus is not validated: the specification lists no ValidationException for it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Optional

from reconciler.sandbox.xks_proxy.crypto import MAX_METADATA_BYTES, TAG_BYTES
from reconciler.sandbox.xks_proxy.errors import XksError

MAX_PLAINTEXT_BYTES = 4300
MAX_AAD_BYTES = 8192
IV_LENGTHS = (12, 16)

_OPTIONAL_METADATA = ("awsSourceVpc", "awsSourceVpce", "kmsViaService")


def _invalid(message: str) -> XksError:
    return XksError("ValidationException", message)


@dataclass(frozen=True)
class RequestMetadata:
    kms_request_id: str
    kms_operation: str
    aws_principal_arn: Optional[str] = None
    kms_key_arn: Optional[str] = None


@dataclass(frozen=True)
class EncryptRequest:
    metadata: RequestMetadata
    plaintext: bytes
    aad: bytes
    want_integrity_value: bool


@dataclass(frozen=True)
class DecryptRequest:
    metadata: RequestMetadata
    ciphertext: bytes
    ciphertext_metadata: bytes
    aad: bytes
    iv: bytes
    tag: bytes


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise _invalid("the request body is not a JSON object")
    return data


def _string(data: dict[str, Any], name: str, where: str, *, required: bool) -> Optional[str]:
    value = data.get(name)
    if value is None:
        if required:
            raise _invalid(f"{where}{name} is required")
        return None
    if not isinstance(value, str):
        raise _invalid(f"{where}{name} must be a string")
    return value


def _base64(data: dict[str, Any], name: str, *, required: bool) -> Optional[bytes]:
    text = _string(data, name, "", required=required)
    if text is None:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{name} is not valid Base64") from None


def _within(value: bytes, name: str, limit: int) -> bytes:
    if len(value) > limit:
        raise XksError("UnsupportedOperationException",
                       f"{name} is {len(value)} bytes; this proxy supports at most {limit}")
    return value


def _metadata(data: dict[str, Any], *, principal: bool, key_arn: bool) -> RequestMetadata:
    meta = data.get("requestMetadata")
    if not isinstance(meta, dict):
        raise _invalid("requestMetadata is required and must be a JSON object")
    where = "requestMetadata."
    for name in _OPTIONAL_METADATA:
        _string(meta, name, where, required=False)
    return RequestMetadata(
        kms_request_id=_string(meta, "kmsRequestId", where, required=True) or "",
        kms_operation=_string(meta, "kmsOperation", where, required=True) or "",
        aws_principal_arn=_string(meta, "awsPrincipalArn", where, required=principal),
        kms_key_arn=_string(meta, "kmsKeyArn", where, required=key_arn),
    )


def _algorithm(data: dict[str, Any]) -> None:
    algorithm = _string(data, "encryptionAlgorithm", "", required=True)
    if algorithm != "AES_GCM":
        raise _invalid(f"encryptionAlgorithm must be AES_GCM; got {algorithm[:40]!r}")


def parse_health(body: bytes) -> Optional[RequestMetadata]:
    """The health request's metadata when it is well formed, else None (never an error)."""
    try:
        return _metadata(_json_object(body), principal=False, key_arn=False)
    except XksError:
        return None


def parse_metadata(body: bytes) -> RequestMetadata:
    return _metadata(_json_object(body), principal=True, key_arn=False)


def _crypto_request(body: bytes) -> tuple[dict[str, Any], RequestMetadata]:
    data = _json_object(body)
    meta = _metadata(data, principal=True, key_arn=True)
    _algorithm(data)
    return data, meta


def _data(data: dict[str, Any], name: str) -> bytes:
    """A required Base64 field of 1 to MAX_PLAINTEXT_BYTES bytes (plaintext or ciphertext)."""
    value = _within(_base64(data, name, required=True) or b"", name, MAX_PLAINTEXT_BYTES)
    if not value:
        raise _invalid(f"{name} is empty")
    return value


def _aad(data: dict[str, Any]) -> bytes:
    name = "additionalAuthenticatedData"
    return _within(_base64(data, name, required=False) or b"", name, MAX_AAD_BYTES)


def parse_encrypt(body: bytes) -> EncryptRequest:
    data, meta = _crypto_request(body)
    plaintext, aad = _data(data, "plaintext"), _aad(data)
    cdiv = _string(data, "ciphertextDataIntegrityValueAlgorithm", "", required=False)
    if cdiv is not None and cdiv != "SHA_256":
        raise _invalid(f"ciphertextDataIntegrityValueAlgorithm must be SHA_256; got {cdiv[:40]!r}")
    return EncryptRequest(meta, plaintext, aad, want_integrity_value=cdiv is not None)


def parse_decrypt(body: bytes) -> DecryptRequest:
    data, meta = _crypto_request(body)
    ciphertext = _data(data, "ciphertext")
    ciphertext_metadata = _base64(data, "ciphertextMetadata", required=False) or b""
    if len(ciphertext_metadata) > MAX_METADATA_BYTES:
        raise _invalid(f"ciphertextMetadata is {len(ciphertext_metadata)} bytes; at most {MAX_METADATA_BYTES}")
    aad = _aad(data)
    iv = _base64(data, "initializationVector", required=True) or b""
    if len(iv) not in IV_LENGTHS:
        raise _invalid(f"initializationVector is {len(iv)} bytes; it must be 12 or 16")
    tag = _base64(data, "authenticationTag", required=True) or b""
    if len(tag) != TAG_BYTES:
        raise _invalid(f"authenticationTag is {len(tag)} bytes; it must be {TAG_BYTES}")
    return DecryptRequest(meta, ciphertext, ciphertext_metadata, aad, iv, tag)
