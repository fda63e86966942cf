"""AES-256-GCM as the XKS Proxy API specification lays it out.

- The key material of an external key is derived with HKDF-SHA256 from the proxy's key
  material seed and the key id: the same seed gives the same keys, so ciphertexts survive a
  restart of a proxy configured with ``keyMaterialSeed``; without one the proxy draws a random
  seed when it starts, and its ciphertexts are readable only while it runs.
- The GCM additional data binds the caller's AAD and the ciphertextMetadata with their lengths:
  ``len(AAD) as 2 bytes big-endian || AAD || len(metadata) as 1 byte || metadata``.
- The ciphertext data integrity value (CDIV) is SHA-256 over
  ``AAD || ciphertextMetadata || IV || ciphertext || tag`` (each absent part counts as empty).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

IV_BYTES = 12
TAG_BYTES = 16
MAX_AAD_BYTES = 0xFFFF  # what fits the 2-byte length; the API needs at most 8192
MAX_METADATA_BYTES = 20

# The ciphertextMetadata this proxy returns: it names the layout of the GCM additional data, as the
# specification suggests, so a later layout could still decrypt older ciphertexts.
CIPHERTEXT_METADATA = b"rxp-aad-v1"

_HKDF_INFO = b"reconciler sandbox xks-proxy key material v1:"


class DecryptionFailed(Exception):
    """The tag does not authenticate the ciphertext, IV, AAD and ciphertextMetadata."""


def derive_key(seed: bytes, key_id: str) -> bytes:
    """The 256-bit key material of external key ``key_id`` under ``seed``."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO + key_id.encode()).derive(seed)


def gcm_aad(aad: bytes, metadata: bytes) -> bytes:
    if len(aad) > MAX_AAD_BYTES or len(metadata) > MAX_METADATA_BYTES:
        raise ValueError("the additional authenticated data or the ciphertext metadata is too long")
    return len(aad).to_bytes(2, "big") + aad + len(metadata).to_bytes(1, "big") + metadata


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    iv: bytes
    tag: bytes
    metadata: bytes


def encrypt(key: bytes, plaintext: bytes, aad: bytes = b"", *, metadata: bytes = CIPHERTEXT_METADATA,
            iv: bytes | None = None) -> Sealed:
    iv = os.urandom(IV_BYTES) if iv is None else iv
    sealed = AESGCM(key).encrypt(iv, plaintext, gcm_aad(aad, metadata))
    return Sealed(ciphertext=sealed[:-TAG_BYTES], iv=iv, tag=sealed[-TAG_BYTES:], metadata=metadata)


def decrypt(key: bytes, ciphertext: bytes, iv: bytes, tag: bytes, aad: bytes = b"", metadata: bytes = b"") -> bytes:
    try:
        return AESGCM(key).decrypt(iv, ciphertext + tag, gcm_aad(aad, metadata))
    except InvalidTag:
        raise DecryptionFailed() from None


def integrity_value(aad: bytes, sealed: Sealed) -> bytes:
    """The CDIV: SHA-256 over AAD || ciphertextMetadata || IV || ciphertext || tag."""
    return hashlib.sha256(aad + sealed.metadata + sealed.iv + sealed.ciphertext + sealed.tag).digest()
