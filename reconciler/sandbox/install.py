"""Install the custom key store emulator into moto.

:func:`install` patches moto's classes in place:

- ``KmsResponse._dispatch`` -> :func:`reconciler.sandbox.protocol.dispatch` (the JSON 1.1
  protocol for every KMS operation) and ``KmsResponse.call_action`` ->
  :func:`reconciler.sandbox.responses.sandbox_call_action` (the request bracket); moto's own
  handlers read the checked input through ``KmsResponse._get_param``;
- ``KmsBackend.create_key`` / ``schedule_key_deletion`` / ``cancel_key_deletion``, ``Key.to_dict``
  and the ``generate_private_key`` name in ``moto.kms.models`` (creation and deletion dates from
  the emulator clock, KMS's key metadata, private keys generated on first use);
- ``CloudTrailResponse.lookup_events`` (moto has none): the emulator's event history
  (:mod:`reconciler.sandbox.trail`);
- ``DomainDispatcherApplication.infer_service_region_host`` of moto's server: a request whose
  ``X-Amz-Target`` names ``TrentService`` goes to KMS even when it is unsigned (moto would send it
  to S3), so KMS can answer MissingAuthenticationTokenException.

Both ``mock_aws`` (in-process) and moto's server (``moto.server`` / ``ThreadedMotoServer``)
dispatch KMS requests through ``KmsResponse.dispatch``, so one call covers both; a separate server
process must call it too. Idempotent: a second call changes nothing.
"""

from __future__ import annotations

import base64
import importlib.abc
import importlib.util
import sys
import threading
from typing import Any

_lock = threading.Lock()
_MARKER = "_reconciler_sandbox_installed"

# moto's KmsResponse._get_param base64-decodes these blob members for its handlers
_DECODED_BLOBS = ("Plaintext", "CiphertextBlob", "Message")


def installed() -> bool:
    from moto.kms.responses import KmsResponse

    return bool(getattr(KmsResponse, _MARKER, False))


def install() -> None:
    """Patch moto so KMS requests go through the sandbox (see module docstring)."""
    from moto.kms.responses import KmsResponse

    with _lock:
        if getattr(KmsResponse, _MARKER, False):
            return
        _patch_models()
        _patch_wire(KmsResponse)
        _patch_server_routing()
        _patch_cloudtrail()
        _cache_moto_dispatch()
        from reconciler.sandbox.sts import install_sts

        install_sts()
        setattr(KmsResponse, _MARKER, True)


def _patch_models() -> None:
    import moto.kms.models as kms_models
    from moto.kms.models import Key, KmsBackend

    from reconciler.sandbox import keys
    from reconciler.sandbox.lazykey import LazyPrivateKey
    from reconciler.sandbox.state import epoch_seconds, now

    # moto's Key.__init__ generates an RSA-2048 key for every key; make it lazy.
    kms_models.generate_private_key = LazyPrivateKey  # type: ignore[assignment]

    Key._moto_to_dict = Key.to_dict  # type: ignore[attr-defined]

    def key_to_dict(self: Any) -> dict[str, Any]:
        backend = kms_models.kms_backends[self.account_id][self.region]
        return {"KeyMetadata": keys.key_metadata(backend, self)}

    Key.to_dict = key_to_dict  # type: ignore[method-assign]

    KmsBackend._moto_create_key = KmsBackend.create_key  # type: ignore[attr-defined]

    def create_key(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = KmsBackend._moto_create_key(self, *args, **kwargs)  # type: ignore[attr-defined]
        key.creation_date = epoch_seconds(now())
        return key

    def schedule_key_deletion(self: Any, key_id: str, pending_window_in_days: int) -> float:
        key = keys.schedule_key_deletion(self, key_id, pending_window_in_days)
        return epoch_seconds(key.deletion_date)

    def cancel_key_deletion(self: Any, key_id: str) -> None:
        keys.cancel_key_deletion(self, key_id)

    KmsBackend.create_key = create_key  # type: ignore[method-assign]
    _patch_xks_crypto(KmsBackend)
    KmsBackend._moto_schedule_key_deletion = KmsBackend.schedule_key_deletion  # type: ignore[attr-defined]
    KmsBackend.schedule_key_deletion = schedule_key_deletion  # type: ignore[method-assign]
    KmsBackend._moto_cancel_key_deletion = KmsBackend.cancel_key_deletion  # type: ignore[attr-defined]
    KmsBackend.cancel_key_deletion = cancel_key_deletion  # type: ignore[method-assign]


def _patch_xks_crypto(KmsBackend: Any) -> None:
    """A key of an external key store whose proxy is registered: moto's ciphertext goes through
    the proxy as well (double encryption; :mod:`reconciler.sandbox.xks_link`). moto's re_encrypt
    and generate_data_key call these two, so every symmetric operation is covered."""
    from reconciler.sandbox import xks_link
    from reconciler.sandbox.state import key_store_of

    moto_encrypt, moto_decrypt = KmsBackend.encrypt, KmsBackend.decrypt

    def xks_store(backend: Any, key_id: str) -> Any:
        key = backend.keys.get(key_id)
        store = key_store_of(backend, key) if key is not None and getattr(key, "xks_key_id", None) else None
        return key, store

    def encrypt(self: Any, key_id: str, plaintext: bytes, encryption_context: dict) -> Any:
        blob, arn = moto_encrypt(self, key_id, plaintext, encryption_context)
        key, store = xks_store(self, self.any_id_to_key_id(key_id))
        if store is not None:
            blob = xks_link.wrap(store, key, blob, "Encrypt")
        return blob, arn

    def decrypt(self: Any, ciphertext_blob: bytes, encryption_context: dict, key_id: Any = None) -> Any:
        owner = ciphertext_blob[:36].decode("utf-8", "replace")
        key, store = xks_store(self, owner)
        if store is not None:
            ciphertext_blob = xks_link.unwrap(store, key, ciphertext_blob, "Decrypt")
        return moto_decrypt(self, ciphertext_blob, encryption_context, key_id)

    KmsBackend.encrypt = encrypt  # type: ignore[method-assign]
    KmsBackend.decrypt = decrypt  # type: ignore[method-assign]


def _patch_wire(KmsResponse: Any) -> None:
    from reconciler.sandbox import protocol, responses

    KmsResponse._moto_dispatch = KmsResponse._dispatch
    KmsResponse._dispatch = protocol.dispatch
    KmsResponse._moto_call_action = KmsResponse.call_action
    KmsResponse.call_action = responses.sandbox_call_action
    moto_get_param = KmsResponse._get_param

    def get_param(self: Any, param_name: str, if_none: Any = None) -> Any:
        params = self.__dict__.get("_sandbox_params")
        if params is None:
            return moto_get_param(self, param_name, if_none)
        value = params.get(param_name, if_none)
        if param_name in _DECODED_BLOBS and isinstance(value, str):
            value = base64.b64decode(value)
        return value

    KmsResponse._moto_get_param = moto_get_param
    KmsResponse._get_param = get_param


_WERKZEUG_APP = "moto.moto_server.werkzeug_app"


def _patch_cloudtrail() -> None:
    """moto's CloudTrail has no LookupEvents: the emulator's answers it (:mod:`.trail`)."""
    from moto.cloudtrail.responses import CloudTrailResponse

    from reconciler.sandbox import trail
    from reconciler.sandbox.responses import call_stats, quota_buckets
    from reconciler.sandbox.settings import current

    def lookup_events(self: Any) -> str:
        """CloudTrail's quota first (when the sandbox's quotas are on), then :func:`.trail.lookup_events`."""
        faults = current().faults
        if faults.quotas_enabled:
            rate = faults.quota_overrides.get("LookupEvents", trail.LOOKUP_EVENTS_QUOTA)
            if not quota_buckets.take(self.current_account, self.region, "LookupEvents", rate):
                call_stats.record_throttled("LookupEvents")
                raise trail.CloudTrailError("ThrottlingException", "Rate exceeded")
        return trail.lookup_events(self)

    CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]


def _patch_server_routing() -> None:
    """Patch moto's server routing now if moto's server is loaded, else when it is imported (the
    embedded sandbox never loads it: importing flask for nothing would slow every command)."""
    module = sys.modules.get(_WERKZEUG_APP)
    if module is not None:
        _route_trent_service_to_kms(module)
    elif not any(isinstance(finder, _PatchOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport(_WERKZEUG_APP, _route_trent_service_to_kms))


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Runs ``patch(module)`` right after ``name`` is imported, once."""

    def __init__(self, name: str, patch: Any) -> None:
        self.name, self.patch = name, patch

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            self.patch(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def _route_trent_service_to_kms(module: Any) -> None:
    from reconciler.sandbox.apimodel import TARGET_PREFIX

    dispatcher = module.DomainDispatcherApplication
    if getattr(dispatcher, "_moto_infer_service_region_host", None) is not None:
        return
    moto_infer = dispatcher.infer_service_region_host

    def infer_service_region_host(self: Any, environ: dict[str, Any], path: str) -> str | None:
        target = environ.get("HTTP_X_AMZ_TARGET") or ""
        if target.split(".", 1)[0] == TARGET_PREFIX and not _signed_for_a_service(environ.get("HTTP_AUTHORIZATION")):
            return "kms.us-east-1.amazonaws.com"
        return moto_infer(self, environ, path)

    dispatcher._moto_infer_service_region_host = moto_infer
    dispatcher.infer_service_region_host = infer_service_region_host


def _signed_for_a_service(authorization: str | None) -> bool:
    """True when moto can read a service from the SigV4 credential scope (it routes by it)."""
    if not authorization:
        return False
    try:
        scope = authorization.split(",")[0].split()[1]
        return len(scope.split("/")) == 5
    except IndexError:
        return False


def _cache_moto_dispatch() -> None:
    """Two per-request costs of moto's dispatch whose answers never change in a process: the
    ``inspect.getmembers`` of a response class on every request (a few milliseconds each), and,
    in the server, the listing of moto's own package directory to route a request."""
    import functools

    import moto.backends
    import moto.core.responses

    names = moto.core.responses.method_names_from_class
    moto.core.responses.method_names_from_class = functools.lru_cache(maxsize=None)(names)  # type: ignore[assignment]
    modules = moto.backends.list_of_moto_modules
    cached_modules = functools.lru_cache(maxsize=1)(lambda: list(modules()))
    moto.backends.list_of_moto_modules = lambda: iter(cached_modules())  # type: ignore[assignment]
