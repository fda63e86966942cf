"""Handlers of the cryptographic operations.

Before any key is used: its state, usage and algorithm are checked (:mod:`reconciler.sandbox.guards`),
so every operation answers KMS's errors for a disabled, unavailable or unsuitable key. moto does
the symmetric cryptography (its ciphertext format, not KMS's); signing, verification, key
agreement and data key pairs use the key pair moto keeps for the key, through ``cryptography``.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from moto.core.exceptions import JsonRESTError
from moto.kms.models import Key

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox import keyspecs
from reconciler.sandbox.apimodel import missing_member
from reconciler.sandbox.calls import backend_of, find_key, moto
from reconciler.sandbox.guards import check_key_usable, refuse_recipient, require_algorithm, require_usage
from reconciler.sandbox.state import CONNECTED, CLOUDHSM, get_store
from reconciler.sandbox.connection import settle_store


def usable_key(response: Any, key_id: str, usage: str, operation: str, *, symmetric: bool | None = None) -> Key:
    key = find_key(response, key_id)
    check_key_usable(backend_of(response), key)
    require_usage(key, usage, operation, symmetric=symmetric)
    return key


# --- symmetric encryption (moto) ----------------------------------------------------------------


def encrypt(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = usable_key(response, params["KeyId"], keyspecs.ENCRYPT_DECRYPT, "Encrypt")
    algorithm = require_algorithm(key, "EncryptionAlgorithms", params.get("EncryptionAlgorithm"), "Encrypt")
    result = moto(response, "encrypt")
    return {**result, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}


def _ciphertext_key(response: Any, blob: str) -> Key:
    """The key a ciphertext (moto's format) was made with; InvalidCiphertextException if none."""
    import base64

    from moto.kms.utils import _deserialize_ciphertext_blob

    try:
        key_id = _deserialize_ciphertext_blob(base64.b64decode(blob)).key_id
    except Exception:
        raise exc.InvalidCiphertextException() from None
    key = backend_of(response).keys.get(key_id)
    if key is None:
        raise exc.InvalidCiphertextException()
    return key


def _check_expected_key(response: Any, expected: str | None, actual: Key) -> None:
    """Decrypt KeyId / ReEncrypt SourceKeyId: "must identify the same KMS key that was used to
    encrypt the ciphertext" (IncorrectKeyException)."""
    if expected is not None and find_key(response, expected).id != actual.id:
        raise exc.IncorrectKeyException()


def ciphertext_of(params: dict[str, Any]) -> str:
    """CiphertextBlob: "This parameter is required in all cases except when DryRun is true and
    DryRunModifiers is set to IGNORE_CIPHERTEXT" (a dry run is answered before this)."""
    if params.get("CiphertextBlob") is None:
        raise missing_member("CiphertextBlob")
    return params["CiphertextBlob"]


def decrypt(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    refuse_recipient(params)
    key = _ciphertext_key(response, ciphertext_of(params))
    _check_expected_key(response, params.get("KeyId"), key)
    check_key_usable(backend_of(response), key)
    require_usage(key, keyspecs.ENCRYPT_DECRYPT, "Decrypt")
    algorithm = require_algorithm(key, "EncryptionAlgorithms", params.get("EncryptionAlgorithm"), "Decrypt")
    result = moto(response, "decrypt")
    return {**result, "KeyId": key.arn, "EncryptionAlgorithm": algorithm}


def re_encrypt(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    source = _ciphertext_key(response, ciphertext_of(params))
    _check_expected_key(response, params.get("SourceKeyId"), source)
    check_key_usable(backend_of(response), source)
    source_algorithm = require_algorithm(
        source, "EncryptionAlgorithms", params.get("SourceEncryptionAlgorithm"), "ReEncrypt"
    )
    destination = usable_key(response, params["DestinationKeyId"], keyspecs.ENCRYPT_DECRYPT, "ReEncrypt")
    destination_algorithm = require_algorithm(
        destination, "EncryptionAlgorithms", params.get("DestinationEncryptionAlgorithm"), "ReEncrypt"
    )
    result = moto(response, "re_encrypt")
    return {
        **result,
        "SourceKeyId": source.arn,
        "KeyId": destination.arn,
        "SourceEncryptionAlgorithm": source_algorithm,
        "DestinationEncryptionAlgorithm": destination_algorithm,
    }


def generate_data_key(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """GenerateDataKey: "You must use a symmetric encryption KMS key"; NumberOfBytes or KeySpec,
    not both, not neither (moto checks that)."""
    refuse_recipient(params)
    key = usable_key(response, params["KeyId"], keyspecs.ENCRYPT_DECRYPT, "GenerateDataKey", symmetric=True)
    return {**moto(response, "generate_data_key"), "KeyId": key.arn}


def generate_data_key_without_plaintext(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = usable_key(response, params["KeyId"], keyspecs.ENCRYPT_DECRYPT, "GenerateDataKeyWithoutPlaintext", symmetric=True)
    result = moto(response, "generate_data_key")
    result.pop("Plaintext", None)
    return {**result, "KeyId": key.arn}


# --- HMAC ---------------------------------------------------------------------------------------


def generate_mac(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = usable_key(response, params["KeyId"], keyspecs.GENERATE_VERIFY_MAC, "GenerateMac")
    require_algorithm(key, "MacAlgorithms", params["MacAlgorithm"], "GenerateMac")
    return {**moto(response, "generate_mac"), "KeyId": key.arn}


def verify_mac(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """VerifyMac: a MAC that does not match answers KMSInvalidMacException."""
    key = usable_key(response, params["KeyId"], keyspecs.GENERATE_VERIFY_MAC, "VerifyMac")
    require_algorithm(key, "MacAlgorithms", params["MacAlgorithm"], "VerifyMac")
    return {**moto(response, "verify_mac"), "KeyId": key.arn}


# --- key pairs ----------------------------------------------------------------------------------

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def _private_key(key: Key) -> Any:
    """The ``cryptography`` private key of an asymmetric KMS key (generated on first use)."""
    return key.private_key.private_key


def _signature_scheme(algorithm: str, private_key: Any, digest: bool) -> tuple[Any, ...]:
    hash_algorithm = _HASHES[algorithm[-3:]]()
    chosen: Any = utils.Prehashed(hash_algorithm) if digest else hash_algorithm
    if algorithm.startswith("ECDSA"):
        return (ec.ECDSA(chosen),)
    if algorithm.startswith("RSASSA_PSS"):
        return (padding.PSS(mgf=padding.MGF1(hash_algorithm), salt_length=hash_algorithm.digest_size), chosen)
    return (padding.PKCS1v15(), chosen)


def _message(params: dict[str, Any], algorithm: str) -> tuple[bytes, bool]:
    """Message and whether it is a digest. MessageType DIGEST: the message must be a digest of
    the signing algorithm's hash ("the length of the Message value must match the length of
    hashed messages for the specified signing algorithm")."""
    import base64

    message = base64.b64decode(params["Message"])
    digest = params.get("MessageType") == "DIGEST"
    if digest and len(message) != _HASHES[algorithm[-3:]]().digest_size:
        raise exc.ValidationException(
            f"Digest is invalid length for algorithm {algorithm}: {len(message)} bytes."
        )
    return message, digest


def sign(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = usable_key(response, params["KeyId"], keyspecs.SIGN_VERIFY, "Sign")
    algorithm = require_algorithm(key, "SigningAlgorithms", params["SigningAlgorithm"], "Sign")
    message, digest = _message(params, algorithm)
    private_key = _private_key(key)
    signature = private_key.sign(message, *_signature_scheme(algorithm, private_key, digest))
    return {"KeyId": key.arn, "Signature": signature, "SigningAlgorithm": algorithm}


def verify(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Verify: "If the signature is not verified, the Verify operation fails with an
    KMSInvalidSignatureException exception." (moto answers SignatureValid false)."""
    import base64

    key = usable_key(response, params["KeyId"], keyspecs.SIGN_VERIFY, "Verify")
    algorithm = require_algorithm(key, "SigningAlgorithms", params["SigningAlgorithm"], "Verify")
    message, digest = _message(params, algorithm)
    private_key = _private_key(key)
    try:
        private_key.public_key().verify(
            base64.b64decode(params["Signature"]), message, *_signature_scheme(algorithm, private_key, digest)
        )
    except (InvalidSignature, ValueError):
        raise exc.KMSInvalidSignatureException() from None
    return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": algorithm}


def get_public_key(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """GetPublicKey: "Returns the public key of an asymmetric KMS key" (a symmetric or HMAC key:
    UnsupportedOperationException)."""
    key = find_key(response, params["KeyId"])
    check_key_usable(backend_of(response), key)
    spec = key.key_spec or keyspecs.SYMMETRIC_DEFAULT
    usage = key.key_usage or keyspecs.ENCRYPT_DECRYPT
    if keyspecs.is_symmetric(spec):
        raise exc.UnsupportedOperationException(f"{key.arn} is a symmetric key: it has no public key.")
    public = _private_key(key).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "KeyId": key.arn,
        "PublicKey": public,
        "CustomerMasterKeySpec": spec,
        "KeySpec": spec,
        "KeyUsage": usage,
        **keyspecs.algorithms(spec, usage),
    }


def derive_shared_secret(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """DeriveSharedSecret: "You must use an asymmetric NIST-standard elliptic curve (ECC) [...] KMS
    key pair with a KeyUsage value of KEY_AGREEMENT"; PublicKey is the peer's DER-encoded
    SubjectPublicKeyInfo on the same curve."""
    import base64

    refuse_recipient(params)
    key = usable_key(response, params["KeyId"], keyspecs.KEY_AGREEMENT, "DeriveSharedSecret")
    algorithm = require_algorithm(key, "KeyAgreementAlgorithms", params["KeyAgreementAlgorithm"], "DeriveSharedSecret")
    private_key = _private_key(key)
    try:
        peer = serialization.load_der_public_key(base64.b64decode(params["PublicKey"]))
    except (ValueError, TypeError):
        peer = None
    if not isinstance(peer, ec.EllipticCurvePublicKey) or peer.curve.name != private_key.curve.name:
        raise exc.ValidationException(
            f"PublicKey must be a DER-encoded SubjectPublicKeyInfo of a {key.key_spec} public key."
        )
    secret = private_key.exchange(ec.ECDH(), peer)
    return {"KeyId": key.arn, "SharedSecret": secret, "KeyAgreementAlgorithm": algorithm, "KeyOrigin": key.origin}


def _no_key_encapsulation(operation: str) -> Any:
    def handler(response: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Encapsulate / Decapsulate need an ML-KEM key (KeyUsage ENCAPSULATE_DECAPSULATE), which the
        emulator does not create (docs/emulator.md): every key answers InvalidKeyUsageException."""
        usable_key(response, params["KeyId"], "ENCAPSULATE_DECAPSULATE", operation)
        raise exc.InvalidKeyUsageException()

    return handler


_PAIR_SPECS = {
    "RSA_2048": lambda: rsa.generate_private_key(65537, 2048),
    "RSA_3072": lambda: rsa.generate_private_key(65537, 3072),
    "RSA_4096": lambda: rsa.generate_private_key(65537, 4096),
    "ECC_NIST_P256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ECC_NIST_P384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ECC_NIST_P521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "ECC_SECG_P256K1": lambda: ec.generate_private_key(ec.SECP256K1()),
}


def _data_key_pair(response: Any, params: dict[str, Any], operation: str) -> dict[str, Any]:
    """GenerateDataKeyPair: "you must specify a symmetric encryption KMS key to encrypt the private
    key in a data key pair. You cannot use an asymmetric KMS key or a KMS key in a custom key
    store." The private key is DER PKCS8, the public key DER SubjectPublicKeyInfo."""
    key = usable_key(response, params["KeyId"], keyspecs.ENCRYPT_DECRYPT, operation, symmetric=True)
    if getattr(key, "custom_key_store_id", None):
        raise exc.UnsupportedOperationException(f"{operation} cannot use {key.arn}: it is in a custom key store.")
    spec = params["KeyPairSpec"]
    make = _PAIR_SPECS.get(spec)
    if make is None:
        raise exc.UnsupportedOperationException(f"KeyPairSpec {spec} is not supported by the KMS emulator.")
    pair = make()
    private = pair.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = pair.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ciphertext, arn = backend_of(response).encrypt(key.id, private, params.get("EncryptionContext") or {})
    return {
        "PrivateKeyCiphertextBlob": ciphertext,
        "PrivateKeyPlaintext": private,
        "PublicKey": public,
        "KeyId": arn,
        "KeyPairSpec": spec,
    }


def generate_data_key_pair(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    refuse_recipient(params)
    return _data_key_pair(response, params, "GenerateDataKeyPair")


def generate_data_key_pair_without_plaintext(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    result = _data_key_pair(response, params, "GenerateDataKeyPairWithoutPlaintext")
    result.pop("PrivateKeyPlaintext")
    return result


# --- random -------------------------------------------------------------------------------------


def generate_random(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """GenerateRandom CustomKeyStoreId: "Generates the random byte string in the CloudHSM cluster
    that is associated with the specified CloudHSM key store [...] If you specify the ID of an
    external key store, GenerateRandom throws an UnsupportedOperationException." An unknown id:
    CustomKeyStoreNotFoundException; a CloudHSM key store that is not connected:
    CustomKeyStoreInvalidStateException."""
    refuse_recipient(params)
    store_id = params.get("CustomKeyStoreId")
    if store_id is not None:
        backend = backend_of(response)
        store = settle_store(backend, get_store(backend, store_id))
        if store.store_type != CLOUDHSM:
            raise exc.UnsupportedOperationException(
                f"GenerateRandom cannot use external key store {store.id}: only CloudHSM key stores are valid."
            )
        if store.connection_state != CONNECTED:
            raise exc.CustomKeyStoreInvalidStateException(
                f"GenerateRandom is not valid for custom key store {store.id} in ConnectionState "
                f"{store.connection_state}; the store must be CONNECTED."
            )
    return {"Plaintext": os.urandom(params["NumberOfBytes"])}


def catch_moto_access_denied(handler: Any) -> Any:
    """moto answers AccessDeniedException where KMS's error list has IncorrectKeyException."""

    def wrapped(response: Any, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return handler(response, params)
        except JsonRESTError as error:
            if getattr(error, "error_type", "") == "AccessDeniedException":
                raise exc.IncorrectKeyException() from None
            raise

    return wrapped


HANDLERS = {
    "Encrypt": encrypt,
    "Decrypt": catch_moto_access_denied(decrypt),
    "ReEncrypt": catch_moto_access_denied(re_encrypt),
    "GenerateDataKey": generate_data_key,
    "GenerateDataKeyWithoutPlaintext": generate_data_key_without_plaintext,
    "GenerateMac": generate_mac,
    "VerifyMac": verify_mac,
    "Sign": sign,
    "Verify": verify,
    "GetPublicKey": get_public_key,
    "DeriveSharedSecret": derive_shared_secret,
    "Encapsulate": _no_key_encapsulation("Encapsulate"),
    "Decapsulate": _no_key_encapsulation("Decapsulate"),
    "GenerateDataKeyPair": generate_data_key_pair,
    "GenerateDataKeyPairWithoutPlaintext": generate_data_key_pair_without_plaintext,
    "GenerateRandom": generate_random,
}
