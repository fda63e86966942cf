"""The emulator calls the XKS proxy of a store whose endpoint is registered, as KMS does.

``uriEndpoint`` has no port, so the sandbox keeps a registry of proxy host names
(``settings.xks_proxies``: host name -> host, port, scheme and the CA to trust), filled by
``reconciler sandbox xks-proxy serve --hostname NAME`` while it runs. For a store whose endpoint's
host is registered:

- CreateCustomKeyStore / UpdateCustomKeyStore of a PUBLIC_ENDPOINT store call health with the
  store's credential (:func:`check_store`): the documented XksProxy* exceptions;
- a connection attempt ends with the health call's outcome (:func:`connection_error`), made when
  the attempt is due on the emulator clock;
- CreateKey calls GetKeyMetadata (:func:`check_key`): XksKeyNotFoundException,
  XksKeyInvalidConfigurationException;
- Encrypt, Decrypt, GenerateDataKey(WithoutPlaintext) and ReEncrypt add the proxy's layer
  (:func:`wrap`, :func:`unwrap`): double encryption; a proxy failure is KMSInvalidStateException.

What KMS makes of each answer is one table, :mod:`reconciler.sandbox.xks_proxy.outcomes`. Every
call is signed with the wall clock and given 250 ms, KMS's limit, on the wall clock too; on a
loaded machine a healthy local proxy can miss it now and then, so ``RECONCILER_SANDBOX_XKS_TIMEOUT_MS``
changes it (the test suite gives 2000 ms, and 250 to the tests of the limit itself). A store
whose host is not registered behaves as before: its proxy is assumed to answer well.
"""

from __future__ import annotations

import struct
from typing import Any, Optional
from urllib.parse import urlsplit

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.settings import current
from reconciler.sandbox.state import CustomKeyStore

TIMEOUT_SECONDS = 0.25  # KMS's: a proxy must answer within 250 ms
TIMEOUT_ENV = "RECONCILER_SANDBOX_XKS_TIMEOUT_MS"


def timeout_seconds() -> float:
    """The time the emulator gives each proxy call: KMS's 250 ms, or ``RECONCILER_SANDBOX_XKS_TIMEOUT_MS``."""
    import os

    try:
        value = float(os.environ.get(TIMEOUT_ENV, "")) / 1000.0
    except ValueError:
        return TIMEOUT_SECONDS
    return value if value > 0 else TIMEOUT_SECONDS
# the proxy's layer of a ciphertext: moto's 36-byte key id, this marker, then the fields
MARKER = b"XKS1"


def hostname_of(uri_endpoint: str | None) -> str:
    return (urlsplit(uri_endpoint or "").hostname or "").lower()


def registration(store: CustomKeyStore) -> Optional[dict[str, Any]]:
    """The registry entry of the store's proxy host, or None (not registered)."""
    if store.is_cloudhsm:
        return None
    registry = getattr(current(), "xks_proxies", None) or {}
    return registry.get(hostname_of(store.uri_endpoint))


def client_for(store: CustomKeyStore, entry: dict[str, Any], *, access_key_id: str | None = None,
               secret: str | None = None) -> Any:
    from reconciler.sandbox.xks_proxy.client import XksClient

    scheme = entry.get("scheme", "https")
    url = f"{scheme}://{hostname_of(store.uri_endpoint)}{store.uri_path or ''}"
    return XksClient(url, access_key_id or store.access_key_id or "", secret or store.raw_secret_access_key or "",
                     timeout=timeout_seconds(), ca_pem=entry.get("caPem"),
                     connect_to=(entry["host"], int(entry["port"])))


def _health(store: CustomKeyStore, entry: dict[str, Any], operation: str, **credential: Any):
    return client_for(store, entry, **credential).health(kms_operation=operation)


def check_store(store: CustomKeyStore, operation: str, *, uri_endpoint: str | None = None,
                uri_path: str | None = None, access_key_id: str | None = None, secret: str | None = None) -> None:
    """Create/UpdateCustomKeyStore of a PUBLIC_ENDPOINT store: health with the (new) settings
    and credential; raises the XksProxy* exception KMS would."""
    from reconciler.sandbox.xks_proxy.outcomes import store_exception

    probe = CustomKeyStore(id=store.id, name=store.name, store_type=store.store_type,
                           creation_date=store.creation_date, connectivity=store.connectivity,
                           uri_endpoint=uri_endpoint or store.uri_endpoint, uri_path=uri_path or store.uri_path)
    entry = registration(probe)
    if entry is None:
        return
    result = _health(probe, entry, operation, access_key_id=access_key_id or store.access_key_id,
                     secret=secret or store.raw_secret_access_key)
    name = store_exception(result)
    if name:
        detail = str(result.failure) if result.failure else "every EKM of the proxy's fleet is UNAVAILABLE"
        raise exc.exception_class(name)(f"{exc.exception_class(name).default_message} ({detail})")


def connection_error(store: CustomKeyStore) -> Optional[str]:
    """The ConnectionErrorCode a connection attempt of the store ends with (None: CONNECTED),
    or None when its proxy is not registered."""
    from reconciler.sandbox.xks_proxy.outcomes import connection_error_code

    entry = registration(store)
    if entry is None:
        return None
    return connection_error_code(_health(store, entry, "ConnectCustomKeyStore"))


def check_key(store: CustomKeyStore, xks_key_id: str, key_arn: str | None = None) -> None:
    """CreateKey: GetKeyMetadata of the external key; XksKey* exceptions as KMS raises them."""
    from reconciler.sandbox.xks_proxy.outcomes import key_exception, key_problem

    entry = registration(store)
    if entry is None:
        return
    result = client_for(store, entry).metadata(xks_key_id, kms_operation="CreateKey", kms_key_arn=key_arn)
    name = key_exception(result)
    if name:
        raise exc.exception_class(name)(
            f"External key {xks_key_id} of external key store {store.id} cannot back a KMS key: "
            f"{key_problem(result)}.")


def _unavailable(key_id: str, operation: str, result: Any) -> exc.KmsError:
    return exc.KMSInvalidStateException(
        f"{operation} with key {key_id} failed: its external key store proxy could not "
        f"complete the request ({result.failure}).")


def wrap(store: CustomKeyStore, key: Any, inner: bytes, operation: str) -> bytes:
    """The proxy's layer over moto's ciphertext blob (double encryption)."""
    entry = registration(store)
    if entry is None:
        return inner
    result = client_for(store, entry).encrypt(key.xks_key_id, inner, key.arn.encode(), integrity_value=False,
                                              kms_operation=operation, kms_key_arn=key.arn)
    if not result.ok:
        raise _unavailable(key.id, operation, result)
    enc = result.value
    metadata = enc.ciphertext_metadata or b""
    return (inner[:36] + MARKER + struct.pack(">BBB", len(enc.iv), len(enc.tag), len(metadata))
            + enc.iv + enc.tag + metadata + enc.ciphertext)


def unwrap(store: CustomKeyStore, key: Any, blob: bytes, operation: str) -> bytes:
    """moto's ciphertext blob under the proxy's layer (a blob without the layer is returned)."""
    if blob[36:40] != MARKER:
        return blob
    from reconciler.sandbox.xks_proxy.results import Encrypted

    try:
        iv_len, tag_len, meta_len = struct.unpack(">BBB", blob[40:43])
        at = 43
        iv, tag = blob[at:at + iv_len], blob[at + iv_len:at + iv_len + tag_len]
        at += iv_len + tag_len
        metadata, ciphertext = blob[at:at + meta_len], blob[at + meta_len:]
    except struct.error:
        raise exc.InvalidCiphertextException() from None
    entry = registration(store)
    if entry is None:
        raise exc.KMSInvalidStateException(
            f"{operation} with key {key.id} failed: its external key store proxy is not reachable.")
    result = client_for(store, entry).decrypt(key.xks_key_id, Encrypted(ciphertext, iv, tag, metadata or None),
                                              key.arn.encode(), kms_operation=operation, kms_key_arn=key.arn)
    if not result.ok:
        raise _unavailable(key.id, operation, result)
    return result.value.plaintext
