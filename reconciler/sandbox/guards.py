"""Whether a key may be used for a cryptographic operation: its state, its usage, the algorithm.

Key states (Developer Guide, "Key states of KMS keys", summarised in docs/kms-rules.md): a
Disabled key answers DisabledException; a key PendingDeletion, PendingImport, or Unavailable (its
custom key store is not CONNECTED) answers KMSInvalidStateException. A key whose KeyUsage or key
spec does not fit the operation, or an algorithm the key does not support, answers
InvalidKeyUsageException ("the KeyUsage value of the KMS key is incompatible with the API
operation, or the encryption algorithm or signing algorithm specified for the operation is
incompatible with the type of key material in the KMS key").
"""

from __future__ import annotations

from typing import Any

from moto.kms.models import Key, KmsBackend

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox import keyspecs
from reconciler.sandbox.keys import PENDING_IMPORT, effective_key_state
from reconciler.sandbox.state import PENDING_DELETION, UNAVAILABLE


def check_key_usable(backend: KmsBackend, key: Key) -> None:
    """The key's state allows a cryptographic operation (see the module docstring)."""
    state = effective_key_state(backend, key)
    if state == "Disabled":
        raise exc.DisabledException(f"{key.arn} is disabled.")
    if state == PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")
    if state == PENDING_IMPORT:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending import.")
    if state == UNAVAILABLE:
        raise exc.KMSInvalidStateException(
            f"{key.arn} is unavailable: its custom key store {getattr(key, 'custom_key_store_id', '')} "
            "is not connected."
        )


def spec_and_usage(key: Key) -> tuple[str, str]:
    return key.key_spec or keyspecs.SYMMETRIC_DEFAULT, key.key_usage or keyspecs.ENCRYPT_DECRYPT


def require_usage(key: Key, usage: str, operation: str, *, symmetric: bool | None = None) -> None:
    spec, actual = spec_and_usage(key)
    if actual != usage or (symmetric is True and spec != keyspecs.SYMMETRIC_DEFAULT):
        raise exc.InvalidKeyUsageException(
            f"{operation} cannot use {key.arn}: its KeyUsage is {actual} and its KeySpec {spec}."
        )


def require_algorithm(key: Key, member: str, algorithm: str | None, operation: str) -> str:
    """The algorithm the operation uses with this key (a default where the API gives one)."""
    spec, usage = spec_and_usage(key)
    allowed = keyspecs.algorithms(spec, usage).get(member, [])
    if algorithm is None:
        if member == "EncryptionAlgorithms" and spec == keyspecs.SYMMETRIC_DEFAULT:
            return "SYMMETRIC_DEFAULT"  # EncryptionAlgorithm: "The default value, SYMMETRIC_DEFAULT"
        if member == "KeyAgreementAlgorithms":
            return "ECDH"
        raise exc.InvalidKeyUsageException(f"{operation} needs an algorithm for {key.arn}.")
    if algorithm not in allowed:
        raise exc.InvalidKeyUsageException(
            f"{algorithm} is not valid for {key.arn} (KeySpec {spec}, KeyUsage {usage}); valid: "
            f"{', '.join(allowed) or 'none'}."
        )
    return algorithm


def refuse_recipient(params: dict[str, Any]) -> None:
    """Recipient: the emulator cannot verify a Nitro attestation document (docs/emulator.md)."""
    if params.get("Recipient"):
        raise exc.ValidationException(
            "The KMS emulator does not verify attestation documents: Recipient is not supported."
        )
