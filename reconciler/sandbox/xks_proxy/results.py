"""What :class:`~reconciler.sandbox.xks_proxy.client.XksClient` returns: typed values and failures.

A call gives a :class:`CallResult`: ``value`` when it worked, else ``failure``, one of the
:class:`Failure` kinds, which tell apart what KMS tells apart (the proxy's own error, a malformed
answer, a refused connection, a name that does not resolve, a TLS failure, a timeout).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Optional, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class EkmMember:
    id: str
    model: str
    health_status: str


@dataclass(frozen=True)
class Health:
    fleet_size: int
    proxy_vendor: str
    proxy_model: str
    ekm_vendor: str
    fleet: tuple[EkmMember, ...]


@dataclass(frozen=True)
class KeyMetadata:
    key_spec: str
    key_usage: tuple[str, ...]
    key_status: str


@dataclass(frozen=True)
class Encrypted:
    ciphertext: bytes
    iv: bytes
    tag: bytes
    ciphertext_metadata: Optional[bytes] = None
    integrity_value: Optional[bytes] = None


@dataclass(frozen=True)
class Decrypted:
    plaintext: bytes = field(repr=False)


@dataclass(frozen=True)
class Failure:
    detail: str

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class HttpError(Failure):
    """The proxy answered with an error of the specification: ``errorName`` and its status."""

    status: int = 0
    error_name: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class MalformedResponse(Failure):
    """An answer that is not what the specification says (``status`` None: not even HTTP)."""

    status: Optional[int] = None


@dataclass(frozen=True)
class ConnectionRefused(Failure):
    pass


@dataclass(frozen=True)
class NameNotResolved(Failure):
    pass


@dataclass(frozen=True)
class TlsFailure(Failure):
    """The TLS handshake failed; ``verify_code`` is OpenSSL's when the certificate was refused
    (10 expired, 18 self-signed, 19/20 unknown issuer, 62 wrong host name)."""

    verify_code: Optional[int] = None


@dataclass(frozen=True)
class Timeout(Failure):
    pass


@dataclass(frozen=True)
class ConnectionFailed(Failure):
    pass


@dataclass(frozen=True)
class CallResult(Generic[T]):
    value: Optional[T]
    failure: Optional[Failure]
    elapsed_ms: float
    status: Optional[int] = None

    @property
    def ok(self) -> bool:
        return self.failure is None
