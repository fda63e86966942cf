"""A small signed client for the XKS proxy API, as KMS calls it.

Every call returns a :class:`CallResult`: the typed value, or a typed :class:`Failure` that says
what went wrong the way KMS would tell it apart (an error the proxy answered, a refused
connection, a TLS failure, a timeout, a malformed answer), and how long the call took::

    client = XksClient("https://xks.example.com/kms/xks/v1", "ABCDEFGHIJKLMNOPQRST2345", secret,
                       ca_pem=ca.cert_pem, connect_to=("127.0.0.1", 54321), timeout=0.25)
    result = client.health()
    if not result.ok and isinstance(result.failure, HttpError):
        result.failure.error_name      # e.g. "AuthenticationFailedException"

``connect_to`` sends the request to another address than the URL's host while keeping the host
name for the Host header, the TLS server name and certificate checks (a registry of local
proxies needs this). ``timeout`` bounds the whole call, connection and TLS handshake included.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import json
import socket
import ssl
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import urlsplit

from pydantic import SecretStr

from reconciler.sandbox.xks_proxy import sigv4
from reconciler.sandbox.xks_proxy.results import (CallResult, ConnectionFailed, ConnectionRefused, Decrypted,
                                                  EkmMember, Encrypted, Failure, Health, HttpError, KeyMetadata,
                                                  MalformedResponse, NameNotResolved, Timeout, TlsFailure)
from reconciler.sandbox.xks_proxy.tls import client_context

__all__ = ["CallResult", "ConnectionFailed", "ConnectionRefused", "Decrypted", "EkmMember", "Encrypted", "Failure",
           "Health", "HttpError", "KeyMetadata", "MalformedResponse", "NameNotResolved", "Timeout", "TlsFailure",
           "XksClient"]

T = TypeVar("T")

DEFAULT_PRINCIPAL = "arn:aws:iam::111122223333:user/reconciler-sandbox"


class _Malformed(Exception):
    pass


# Parsing answers ----------------------------------------------------------------------------


def _field(data: dict[str, Any], name: str, kind: Union[type, tuple[type, ...]]) -> Any:
    value = data.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Malformed(f"the answer's {name} is missing or not a {getattr(kind, '__name__', 'value')}")
    return value


def _b64(data: dict[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(_field(data, name, str), validate=True)
    except (binascii.Error, ValueError):
        raise _Malformed(f"the answer's {name} is not Base64") from None


def _health(data: dict[str, Any]) -> Health:
    fleet_size = _field(data, "xksProxyFleetSize", int)
    if fleet_size < 1:
        raise _Malformed("xksProxyFleetSize must be at least 1")
    details = _field(data, "ekmFleetDetails", list)
    if not 1 <= len(details) <= 10 or not all(isinstance(d, dict) for d in details):
        raise _Malformed("ekmFleetDetails must list 1 to 10 members")
    fleet = tuple(EkmMember(_field(d, "id", str), _field(d, "model", str), _field(d, "healthStatus", str))
                  for d in details)
    unknown = sorted({m.health_status for m in fleet} - {"ACTIVE", "DEGRADED", "UNAVAILABLE"})
    if unknown:
        raise _Malformed(f"unknown healthStatus {', '.join(unknown)}")
    return Health(fleet_size, _field(data, "xksProxyVendor", str), _field(data, "xksProxyModel", str),
                  _field(data, "ekmVendor", str), fleet)


def _metadata(data: dict[str, Any]) -> KeyMetadata:
    usage = _field(data, "keyUsage", list)
    if len(usage) > 10 or not all(isinstance(u, str) for u in usage):
        raise _Malformed("keyUsage must list at most 10 strings")
    return KeyMetadata(_field(data, "keySpec", str), tuple(usage), _field(data, "keyStatus", str))


def _encrypted(data: dict[str, Any], plaintext: bytes, aad: bytes, want_cdiv: bool) -> Encrypted:
    ciphertext, iv, tag = _b64(data, "ciphertext"), _b64(data, "initializationVector"), _b64(data, "authenticationTag")
    metadata = _b64(data, "ciphertextMetadata") if data.get("ciphertextMetadata") is not None else None
    if len(ciphertext) != len(plaintext):
        raise _Malformed(f"the ciphertext is {len(ciphertext)} bytes for {len(plaintext)} bytes of plaintext")
    if len(iv) not in (12, 16) or len(tag) != 16:
        raise _Malformed("the initialization vector must be 12 or 16 bytes and the tag 16")
    if metadata is not None and len(metadata) > 20:
        raise _Malformed(f"ciphertextMetadata is {len(metadata)} bytes; at most 20")
    cdiv = None
    if want_cdiv:
        cdiv = _b64(data, "ciphertextDataIntegrityValue")
        expected = hashlib.sha256(aad + (metadata or b"") + iv + ciphertext + tag).digest()
        if cdiv != expected:
            raise _Malformed("ciphertextDataIntegrityValue does not match the ciphertext")
    return Encrypted(ciphertext, iv, tag, metadata, cdiv)


def _failure(status: int, body: bytes) -> Failure:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("errorName"), str):
        message = data.get("errorMessage") if isinstance(data.get("errorMessage"), str) else ""
        return HttpError(f"HTTP {status} {data['errorName']}: {message}".rstrip(": "), status, data["errorName"],
                         message)
    return MalformedResponse(f"HTTP {status} without an errorName in a JSON body", status)


# The client ---------------------------------------------------------------------------------


class _HttpsTo(http.client.HTTPSConnection):
    """HTTPS to one address, with the TLS server name (and certificate check) of another."""

    def __init__(self, host: str, port: int, *, server_hostname: str, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_hostname)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class XksClient:
    def __init__(self, base_url: str, access_key_id: str, secret_access_key: SecretStr | str, *,
                 region: str = "us-east-1", timeout: float = 2.0, ca_pem: Optional[bytes | str] = None,
                 ssl_context: Optional[ssl.SSLContext] = None, connect_to: Optional[tuple[str, int]] = None,
                 clock: Callable[[], datetime] = _utcnow, principal_arn: str = DEFAULT_PRINCIPAL) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"base_url must be http(s)://HOST[:PORT]/URI_PATH; got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._scheme, self._netloc, self._path = parts.scheme, parts.netloc, parts.path.rstrip("/")
        self._hostname = parts.hostname
        self._address = connect_to or (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        self.access_key_id = access_key_id
        self._secret = secret_access_key if isinstance(secret_access_key, SecretStr) else SecretStr(secret_access_key)
        self.region = region
        self.timeout = timeout
        if ssl_context is None and parts.scheme == "https":
            pem = ca_pem.encode("ascii") if isinstance(ca_pem, str) else ca_pem
            ssl_context = client_context(pem)
        self._context = ssl_context
        self.clock = clock
        self.principal_arn = principal_arn

    def __repr__(self) -> str:
        return f"XksClient({self.base_url!r}, access_key_id={self.access_key_id!r})"

    # The four calls -------------------------------------------------------------------------

    def _meta(self, operation: str, kms_key_arn: Optional[str] = None, *, principal: bool = True) -> dict[str, str]:
        meta = {"kmsRequestId": str(uuid.uuid4()), "kmsOperation": operation}
        if principal:
            meta["awsPrincipalArn"] = self.principal_arn
        if kms_key_arn is not None:
            meta["kmsKeyArn"] = kms_key_arn
        return meta

    def _key_arn(self, key_id: str) -> str:
        return f"arn:aws:kms:{self.region}:111122223333:key/xks-{key_id}"

    def health(self, *, kms_operation: str = "KmsHealthCheck") -> CallResult[Health]:
        return self._call("/health", {"requestMetadata": self._meta(kms_operation, principal=False)}, _health)

    def metadata(self, key_id: str, *, kms_operation: str = "DescribeKey",
                 kms_key_arn: Optional[str] = None) -> CallResult[KeyMetadata]:
        body = {"requestMetadata": self._meta(kms_operation, kms_key_arn)}
        return self._call(f"/keys/{key_id}/metadata", body, _metadata)

    def encrypt(self, key_id: str, plaintext: bytes, aad: Optional[bytes] = None, *, integrity_value: bool = True,
                kms_operation: str = "Encrypt", kms_key_arn: Optional[str] = None) -> CallResult[Encrypted]:
        body: dict[str, Any] = {"requestMetadata": self._meta(kms_operation, kms_key_arn or self._key_arn(key_id)),
                                "plaintext": base64.b64encode(plaintext).decode(), "encryptionAlgorithm": "AES_GCM"}
        if aad is not None:
            body["additionalAuthenticatedData"] = base64.b64encode(aad).decode()
        if integrity_value:
            body["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
        return self._call(f"/keys/{key_id}/encrypt", body,
                          lambda data: _encrypted(data, plaintext, aad or b"", integrity_value))

    def decrypt(self, key_id: str, encrypted: Encrypted, aad: Optional[bytes] = None, *,
                kms_operation: str = "Decrypt", kms_key_arn: Optional[str] = None) -> CallResult[Decrypted]:
        b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
        body: dict[str, Any] = {"requestMetadata": self._meta(kms_operation, kms_key_arn or self._key_arn(key_id)),
                                "ciphertext": b64(encrypted.ciphertext), "encryptionAlgorithm": "AES_GCM",
                                "initializationVector": b64(encrypted.iv), "authenticationTag": b64(encrypted.tag)}
        if encrypted.ciphertext_metadata is not None:
            body["ciphertextMetadata"] = b64(encrypted.ciphertext_metadata)
        if aad is not None:
            body["additionalAuthenticatedData"] = b64(aad)
        return self._call(f"/keys/{key_id}/decrypt", body, lambda data: Decrypted(_b64(data, "plaintext")))

    def post(self, suffix: str, payload: dict[str, Any] | bytes) -> CallResult[dict]:
        """POST any body to ``base_url + suffix``; the JSON object of a 200 answer is the value."""
        return self._call(suffix, payload, lambda data: data)

    # Transport ------------------------------------------------------------------------------

    def _call(self, suffix: str, payload: dict[str, Any] | bytes, parse: Callable[[dict], T]) -> CallResult[T]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        started = time.monotonic()
        try:
            status, data = self._exchange(self._path + suffix, body, started + self.timeout)
        except _NetworkFailure as failure:
            return CallResult(None, failure.failure, (time.monotonic() - started) * 1000)
        elapsed = (time.monotonic() - started) * 1000
        if status != 200:
            return CallResult(None, _failure(status, data), elapsed, status)
        try:
            parsed = json.loads(data)
            if not isinstance(parsed, dict):
                raise _Malformed("the answer is not a JSON object")
            return CallResult(parse(parsed), None, elapsed, status)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return CallResult(None, MalformedResponse("the answer is not JSON", status), elapsed, status)
        except _Malformed as exc:
            return CallResult(None, MalformedResponse(str(exc), status), elapsed, status)

    def _exchange(self, path: str, body: bytes, deadline: float) -> tuple[int, bytes]:
        def remaining() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("the deadline passed")
            return left

        host, port = self._address
        if self._scheme == "https":
            conn: http.client.HTTPConnection = _HttpsTo(host, port, server_hostname=self._hostname,
                                                        context=self._context, timeout=remaining())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=remaining())
        headers = [("Host", self._netloc), ("Content-Type", "application/json")]
        headers += sigv4.sign("POST", path, headers, body, access_key_id=self.access_key_id, secret=self._secret,
                              region=self.region, now=self.clock())
        try:
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sock.settimeout(remaining())
            conn.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            conn.sock.settimeout(remaining())
            response = conn.getresponse()
            return response.status, response.read()
        except Exception as exc:  # noqa: BLE001 - every network failure becomes a typed Failure
            raise _NetworkFailure(_classify(exc, self._address)) from None
        finally:
            conn.close()


class _NetworkFailure(Exception):
    def __init__(self, failure: Failure) -> None:
        self.failure = failure


def _classify(exc: BaseException, address: tuple[str, int]) -> Failure:
    where = f"{address[0]}:{address[1]}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TlsFailure(f"the proxy's certificate was refused: {exc.verify_message}", exc.verify_code)
    if isinstance(exc, ssl.SSLError):
        return TlsFailure(f"the TLS handshake with {where} failed: {exc.reason or exc}")
    if isinstance(exc, socket.gaierror):
        return NameNotResolved(f"the host name of {where} does not resolve: {exc.strerror}")
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return Timeout(f"no answer from {where} in time")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectionRefused(f"{where} refused the connection: nothing listens there")
    if isinstance(exc, http.client.HTTPException):
        return MalformedResponse(f"{where} did not answer with HTTP: {type(exc).__name__}")
    if isinstance(exc, OSError):
        return ConnectionFailed(f"the connection to {where} failed: {exc.strerror or exc}")
    return MalformedResponse(f"{where} answered something unreadable: {type(exc).__name__}")
