"""Handlers of imported key material: GetParametersForImport, ImportKeyMaterial,
DeleteImportedKeyMaterial (moto has none of them).

A KMS key created with Origin EXTERNAL has no key material: it is PendingImport until
ImportKeyMaterial brings material wrapped with the public key GetParametersForImport returned.
The emulator supports symmetric encryption keys (CreateKey Origin: "The EXTERNAL origin value is
valid only for symmetric KMS keys"), the RSA wrapping key specs and the RSAES_OAEP, RSA_AES_KEY_WRAP
and RSAES_PKCS1_V1_5 wrapping algorithms; docs/emulator.md lists what it leaves out.
"""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto.kms.models import Key

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.calls import find_key
from reconciler.sandbox.keys import PENDING_IMPORT
from reconciler.sandbox.state import PENDING_DELETION, now

# GetParametersForImport: "Each public key and import token set is valid for 24 hours."
IMPORT_PARAMETERS_HOURS = 24
# ValidTo: "The maximum value is 365 days from the request date."
MAX_VALID_TO_DAYS = 365
_WRAPPING_KEY_BITS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
_OAEP_HASH = {"SHA_1": hashes.SHA1, "SHA_256": hashes.SHA256}


def _external_key(response: Any, key_id: str, operation: str) -> Key:
    """"The Origin of the KMS key must be EXTERNAL" (UnsupportedOperationException)."""
    key = find_key(response, key_id, aliases=False)
    if key.origin != "EXTERNAL":
        raise exc.UnsupportedOperationException(
            f"{operation} is valid only for KMS keys whose Origin is EXTERNAL; {key.arn} has Origin {key.origin}."
        )
    return key


def _material_id(key: Key, material: bytes) -> str:
    """KeyMaterialId: "a unique identifier to the key material based on the KMS key ID and the
    imported key material" (64 lowercase hex digits)."""
    return hashlib.sha256(key.id.encode() + material).hexdigest()


def get_parameters_for_import(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = _external_key(response, params["KeyId"], "GetParametersForImport")
    if key.key_state == PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")
    bits = _WRAPPING_KEY_BITS.get(params["WrappingKeySpec"])
    if bits is None or params["WrappingAlgorithm"] == "SM2PKE":
        raise exc.UnsupportedOperationException("SM2 wrapping keys are available only in China Regions.")
    wrapping_key = rsa.generate_private_key(65537, bits)
    token = os.urandom(64)
    valid_to = now() + timedelta(hours=IMPORT_PARAMETERS_HOURS)
    outstanding = key.__dict__.setdefault("import_parameters", {})
    outstanding[token.hex()] = {
        "pem": wrapping_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "algorithm": params["WrappingAlgorithm"],
        "valid_to": valid_to,
    }
    public = wrapping_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {"KeyId": key.arn, "ImportToken": token, "PublicKey": public, "ParametersValidTo": valid_to}


def _unwrap(parameters: dict[str, Any], wrapped: bytes) -> bytes:
    wrapping_key = serialization.load_pem_private_key(parameters["pem"], password=None)
    algorithm = parameters["algorithm"]
    try:
        if algorithm == "RSAES_PKCS1_V1_5":
            return wrapping_key.decrypt(wrapped, padding.PKCS1v15())  # type: ignore[union-attr]
        digest = _OAEP_HASH["SHA_1" if algorithm.endswith("SHA_1") else "SHA_256"]()
        oaep = padding.OAEP(mgf=padding.MGF1(digest), algorithm=digest, label=None)
        if algorithm.startswith("RSAES_OAEP"):
            return wrapping_key.decrypt(wrapped, oaep)  # type: ignore[union-attr]
        size = wrapping_key.key_size // 8  # type: ignore[union-attr]
        aes_key = wrapping_key.decrypt(wrapped[:size], oaep)  # type: ignore[union-attr]
        return keywrap.aes_key_unwrap_with_padding(aes_key, wrapped[size:])
    except (ValueError, keywrap.InvalidUnwrap):
        raise exc.InvalidCiphertextException(
            "The encrypted key material could not be unwrapped with the wrapping key and algorithm of the import token."
        ) from None


def import_key_material(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = _external_key(response, params["KeyId"], "ImportKeyMaterial")
    if key.key_state == PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")
    # ExpirationModel: "The default is KEY_MATERIAL_EXPIRES"; "When the value of ExpirationModel
    # is KEY_MATERIAL_EXPIRES, you must specify a value for the ValidTo parameter. When value is
    # KEY_MATERIAL_DOES_NOT_EXPIRE, you must omit the ValidTo parameter."
    model = params.get("ExpirationModel") or "KEY_MATERIAL_EXPIRES"
    valid_to = params.get("ValidTo")
    if model == "KEY_MATERIAL_EXPIRES" and valid_to is None:
        raise exc.ValidationException("ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.")
    if model == "KEY_MATERIAL_DOES_NOT_EXPIRE" and valid_to is not None:
        raise exc.ValidationException("ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.")
    if valid_to is not None:
        # "The value of this parameter must be a future date and time. The maximum value is 365
        # days from the request date."
        moment = now().timestamp()
        if not moment < valid_to <= moment + MAX_VALID_TO_DAYS * 86400:
            raise exc.ValidationException("ValidTo must be in the future and at most 365 days from now.")
    token = base64.b64decode(params["ImportToken"]).hex()
    parameters = key.__dict__.get("import_parameters", {}).get(token)
    if parameters is None:
        raise exc.InvalidImportTokenException()
    if now() >= parameters["valid_to"]:
        raise exc.ExpiredImportTokenException()
    material = _unwrap(parameters, base64.b64decode(params["EncryptedKeyMaterial"]))
    if len(material) != 32:
        raise exc.IncorrectKeyMaterialException(
            "The key material of a symmetric encryption KMS key must be 256 bits (32 bytes)."
        )
    imported = getattr(key, "imported_material_id", None)
    material_id = _material_id(key, material)
    if imported is not None and imported != material_id:
        # "you cannot change the key material after the initial import" (the emulator does not
        # keep several key materials for rotation: docs/emulator.md)
        raise exc.IncorrectKeyMaterialException(
            "The key material is not the key material that was previously imported into this KMS key."
        )
    key.key_material = material
    key.imported_material_id = material_id  # type: ignore[attr-defined]
    key.expiration_model = model  # type: ignore[attr-defined]
    key.valid_to = valid_to if model == "KEY_MATERIAL_EXPIRES" else None  # type: ignore[attr-defined]
    if key.key_state == PENDING_IMPORT:
        key.key_state, key.enabled = "Enabled", True
    return {"KeyId": key.arn, "KeyMaterialId": material_id}


def delete_imported_key_material(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """"When the specified KMS key is in the PendingDeletion state, this operation does not change
    the KMS key's state. Otherwise, it changes the KMS key's state to PendingImport." """
    key = _external_key(response, params["KeyId"], "DeleteImportedKeyMaterial")
    material_id = getattr(key, "imported_material_id", None) or ""
    if key.key_state != PENDING_DELETION:
        key.key_state, key.enabled = PENDING_IMPORT, False
    return {"KeyId": key.arn, "KeyMaterialId": material_id}


HANDLERS = {
    "GetParametersForImport": get_parameters_for_import,
    "ImportKeyMaterial": import_key_material,
    "DeleteImportedKeyMaterial": delete_imported_key_material,
}
