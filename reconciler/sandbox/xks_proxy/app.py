"""The proxy's request handling: routing, authentication, the four calls, errors.

:class:`XksProxy` turns a :class:`Request` into a :class:`Response` without any socket, so it is
tested directly and served by :mod:`reconciler.sandbox.xks_proxy.server`. A request is handled in
this order: the route (unknown path: 404 InvalidUriPathException), the method (not POST: 405),
the injected latency of the call kind, SigV4 authentication (401), an injected error, the body
(400 ValidationException), then the call itself. Health is authenticated but never subject to
key-level checks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional
from urllib.parse import unquote

from pydantic import SecretStr

from reconciler.sandbox.xks_proxy import crypto, messages, sigv4
from reconciler.sandbox.xks_proxy.config import Credential, Key, ProxyConfig
from reconciler.sandbox.xks_proxy.controls import Controls
from reconciler.sandbox.xks_proxy.errors import XksError

log = logging.getLogger("reconciler.sandbox.xks_proxy")

PROXY_VENDOR = "Reconciler"
PROXY_MODEL = "Reconciler sandbox XKS proxy 1.0"
CALL_LOG_SIZE = 1000

_OPERATIONS = ("metadata", "encrypt", "decrypt")


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the request line's target: path, and query if any
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class CallRecord:
    """One handled request, for tests and the emulator (no secret, no plaintext)."""

    kind: Optional[str]  # health, metadata, encrypt, decrypt; None for an unknown path
    key_id: Optional[str]
    status: int
    error_name: Optional[str]
    access_key_id: Optional[str]
    kms_operation: Optional[str]
    kms_request_id: Optional[str]


def _json_response(status: int, payload: dict[str, Any], extra: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(status, json.dumps(payload).encode(), (("Content-Type", "application/json"), *extra))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class XksProxy:
    """An XKS proxy for one ``uriPath``.

    ``clock`` is the proxy's time for the SigV4 skew check (inject one for deterministic tests, or
    the emulator's clock); ``sleep`` performs injected latency. ``controls`` changes fleet health,
    latency and injected errors at runtime; :meth:`set_credentials` and :meth:`update_key` change
    the configuration of a running proxy.
    """

    def __init__(self, config: ProxyConfig, *, clock: Callable[[], datetime] = _utcnow,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._config = config
        self._lock = threading.Lock()
        self.clock = clock
        self.sleep = sleep
        self.controls = Controls(config)
        seed = config.key_material_seed
        self._seed = seed.get_secret_value().encode() if seed is not None else os.urandom(32)
        self.calls: deque[CallRecord] = deque(maxlen=CALL_LOG_SIZE)

    # Configuration at runtime ---------------------------------------------------------------

    @property
    def config(self) -> ProxyConfig:
        with self._lock:
            return self._config

    @property
    def uri_path(self) -> str:
        return self.config.uri_path

    def set_credentials(self, credentials: Iterable[Credential | tuple[str, str | SecretStr]]) -> None:
        """Replace the accepted credentials (a rotation adds the new one, later drops the old)."""
        items = [c if isinstance(c, Credential) else Credential(accessKeyId=c[0], secretAccessKey=c[1])
                 for c in credentials]
        with self._lock:
            fields = {name: getattr(self._config, name) for name in ProxyConfig.model_fields}
            self._config = ProxyConfig.model_validate({**fields, "credentials": tuple(items)})

    def update_key(self, key_id: str, **changes: Any) -> Key:
        """Change a key's ``usage``, ``status`` or ``spec``; or add the key if it is new."""
        with self._lock:
            keys = list(self._config.keys)
            index = next((i for i, k in enumerate(keys) if k.id == key_id), None)
            current = {name: getattr(keys[index], name) for name in Key.model_fields} if index is not None else {}
            fields = {**current, "id": key_id, **changes}
            key = Key.model_validate(fields)
            if index is None:
                keys.append(key)
            else:
                keys[index] = key
            self._config = self._config.model_copy(update={"keys": tuple(keys)})
            return key

    # Handling -------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        path, _, query = request.target.partition("?")
        kind, key_id = self._route(path)
        record: dict[str, Any] = {"kind": kind, "key_id": key_id, "access_key_id": None, "kms_operation": None,
                                  "kms_request_id": None, "status": 500, "error_name": "InternalException"}
        try:
            if kind is None:
                raise XksError("InvalidUriPathException", f"no XKS API at {path[:200]}; this proxy serves "
                                                          f"{self.uri_path}/health and {self.uri_path}/keys/...")
            if request.method != "POST":
                record.update(status=405, error_name=None)
                return _json_response(405, {"errorMessage": f"{request.method[:16]} is not allowed: every XKS "
                                                            "API call is a POST"}, [("Allow", "POST")])
            latency = self.controls.latency_ms(kind)
            if latency:
                self.sleep(latency / 1000)
            config = self.config
            secrets = {c.access_key_id: c.secret_access_key for c in config.credentials}
            record["access_key_id"] = sigv4.verify(request.method, path, query, request.headers, request.body,
                                                   secrets, self.clock())
            injected = self.controls.take_error(kind, key_id)
            if injected is not None:
                raise XksError(injected.error_name, injected.message)
            payload = self._call(kind, key_id, config, request.body, record)
            record.update(status=200, error_name=None)
            return _json_response(200, payload)
        except XksError as error:
            record.update(status=error.status, error_name=error.error_name)
            return _json_response(error.status, error.body())
        except Exception:  # a bug: answer as a proxy would, and keep serving
            log.exception("the proxy failed to handle a %s call", kind)
            return _json_response(500, XksError("InternalException", "the proxy failed; see its log").body())
        finally:
            self._record(CallRecord(**record))

    def _route(self, path: str) -> tuple[Optional[str], Optional[str]]:
        prefix = self.uri_path + "/"
        if not path.startswith(prefix):
            return None, None
        parts = path[len(prefix):].split("/")
        if parts == ["health"]:
            return "health", None
        if len(parts) == 3 and parts[0] == "keys" and parts[1] and parts[2] in _OPERATIONS:
            return parts[2], unquote(parts[1])
        return None, None

    def _record(self, record: CallRecord) -> None:
        self.calls.append(record)
        log.info("%s key=%s status=%s error=%s kmsOperation=%s kmsRequestId=%s", record.kind or "unknown-path",
                 record.key_id or "-", record.status, record.error_name or "-", record.kms_operation or "-",
                 record.kms_request_id or "-")

    # The four calls -------------------------------------------------------------------------

    def _call(self, kind: str, key_id: Optional[str], config: ProxyConfig, body: bytes,
              record: dict[str, Any]) -> dict[str, Any]:
        if kind == "health":
            meta = messages.parse_health(body)
            if meta is not None:
                record.update(kms_operation=meta.kms_operation, kms_request_id=meta.kms_request_id)
            return self._health(config)
        parse = {"metadata": messages.parse_metadata, "encrypt": messages.parse_encrypt,
                 "decrypt": messages.parse_decrypt}[kind]
        parsed = parse(body)
        meta = parsed if isinstance(parsed, messages.RequestMetadata) else parsed.metadata
        record.update(kms_operation=meta.kms_operation, kms_request_id=meta.kms_request_id)
        key = config.key(key_id or "")
        if key is None:
            raise XksError("KeyNotFoundException", f"no external key {key_id[:128]!r} in this proxy")
        if self.controls.all_unavailable():
            raise XksError("InternalException", "every member of the external key manager fleet is UNAVAILABLE")
        if kind == "metadata":
            return {"keySpec": key.spec, "keyUsage": list(key.usage), "keyStatus": key.status}
        self._check_usable(key, "ENCRYPT" if kind == "encrypt" else "DECRYPT")
        if kind == "encrypt":
            assert isinstance(parsed, messages.EncryptRequest)
            return self._encrypt(key, parsed)
        assert isinstance(parsed, messages.DecryptRequest)
        return self._decrypt(key, parsed)

    def _health(self, config: ProxyConfig) -> dict[str, Any]:
        return {
            "xksProxyFleetSize": 1,
            "xksProxyVendor": PROXY_VENDOR,
            "xksProxyModel": PROXY_MODEL,
            "ekmVendor": config.ekm.vendor,
            "ekmFleetDetails": [{"id": m.id, "model": m.model, "healthStatus": m.health_status}
                                for m in self.controls.fleet()],
        }

    @staticmethod
    def _check_usable(key: Key, usage: str) -> None:
        if key.status != "ENABLED":
            raise XksError("InvalidStateException", f"the external key {key.id} is {key.status}")
        if usage not in key.usage:
            raise XksError("InvalidKeyUsageException", f"the external key {key.id} does not allow {usage}")
        if key.spec != "AES_256":
            raise XksError("InvalidKeyUsageException", f"the external key {key.id} is {key.spec}, not an AES_256 "
                                                       "key: it cannot do AES-GCM")

    def _key_material(self, key: Key) -> bytes:
        return crypto.derive_key(self._seed, key.id)

    def _encrypt(self, key: Key, request: messages.EncryptRequest) -> dict[str, Any]:
        material = self._key_material(key)
        sealed = crypto.encrypt(material, request.plaintext, request.aad)
        out = {"ciphertext": _b64(sealed.ciphertext), "ciphertextMetadata": _b64(sealed.metadata),
               "initializationVector": _b64(sealed.iv), "authenticationTag": _b64(sealed.tag)}
        if request.want_integrity_value:
            # computed before the check decrypt, as the specification's Appendix C asks
            out["ciphertextDataIntegrityValue"] = _b64(crypto.integrity_value(request.aad, sealed))
            try:
                crypto.decrypt(material, sealed.ciphertext, sealed.iv, sealed.tag, request.aad, sealed.metadata)
            except crypto.DecryptionFailed:
                raise XksError("InternalException", "the ciphertext did not decrypt after encryption") from None
        return out

    def _decrypt(self, key: Key, request: messages.DecryptRequest) -> dict[str, Any]:
        try:
            plaintext = crypto.decrypt(self._key_material(key), request.ciphertext, request.iv, request.tag,
                                       request.aad, request.ciphertext_metadata)
        except crypto.DecryptionFailed:
            raise XksError("InvalidCiphertextException",
                           "the ciphertext, initialization vector, additional authenticated data, ciphertext "
                           "metadata or authentication tag is corrupted, or belongs to another key") from None
        return {"plaintext": _b64(plaintext)}
