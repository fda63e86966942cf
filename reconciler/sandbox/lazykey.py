"""moto's private key of a KMS key, generated on first use.

moto's ``Key.__init__`` generates an RSA-2048 key for every key, symmetric ones included (~50 ms
each); :func:`reconciler.sandbox.install.install` puts :class:`LazyPrivateKey` in its place, which
defers generation to the first sign, verify or GetPublicKey.
"""

from __future__ import annotations

from typing import Any

_ECC_SIGNING = {
    "ECC_NIST_P256": ["ECDSA_SHA_256"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
    "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"],
}


class LazyPrivateKey:
    """Stands in for moto's ``generate_private_key(key_spec)`` result.

    moto's ``Key.__init__`` generates an RSA-2048 key for every key, symmetric ones included
    (~50 ms each); this defers generation to the first sign/verify/GetPublicKey. A generated
    key pickles as PEM (cryptography key objects do not pickle).
    """

    __slots__ = ("key_spec", "_real")

    def __init__(self, key_spec: str) -> None:
        self.key_spec = key_spec
        self._real: Any = None

    @property
    def generated(self) -> bool:
        return self._real is not None

    def _key(self) -> Any:
        if self._real is None:
            from moto.kms.utils import generate_private_key

            self._real = generate_private_key(self.key_spec)
        return self._real

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        return self._key().sign(message, signing_algorithm)

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        return self._key().verify(message, signature, signing_algorithm)

    def public_key(self) -> bytes:
        return self._key().public_key()

    def __getattr__(self, name: str) -> Any:  # e.g. .private_key / .key_size of moto's wrapper
        if name.startswith("__") or name in LazyPrivateKey.__slots__:
            raise AttributeError(name)
        return getattr(self._key(), name)

    def __getstate__(self) -> dict[str, Any]:
        pem = None
        if self._real is not None:
            from cryptography.hazmat.primitives import serialization

            pem = self._real.private_key.private_bytes(
                encoding=serialization.Encoding.PEM,
                format=serialization.PrivateFormat.PKCS8,
                encryption_algorithm=serialization.NoEncryption(),
            )
        return {"key_spec": self.key_spec, "pem": pem}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.key_spec = state["key_spec"]
        self._real = None
        pem = state.get("pem")
        if pem:
            from cryptography.hazmat.primitives import serialization
            from moto.kms.utils import ECDSAPrivateKey, RSAPrivateKey

            loaded = serialization.load_pem_private_key(pem, password=None)
            if self.key_spec in _ECC_SIGNING:
                wrapper: Any = ECDSAPrivateKey.__new__(ECDSAPrivateKey)
                wrapper.valid_signing_algorithms = list(_ECC_SIGNING[self.key_spec])
            else:
                wrapper = RSAPrivateKey.__new__(RSAPrivateKey)
                wrapper.key_size = loaded.key_size  # type: ignore[union-attr]
            wrapper.private_key = loaded
            self._real = wrapper
