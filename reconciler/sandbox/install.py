"""Install the custom key store emulator into moto.

:func:`install` patches moto's classes in place (``KmsResponse``, ``KmsBackend``, ``Key`` and the
``generate_private_key`` name in ``moto.kms.models``). Both ``mock_aws`` (in-process) and moto's
server (``moto.server`` / ``ThreadedMotoServer``) dispatch KMS requests through
``KmsResponse.dispatch``, so one call covers both; a separate server process must call it too.
Idempotent: a second call changes nothing.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_MARKER = "_reconciler_sandbox_installed"


def installed() -> bool:
    from moto.kms.responses import KmsResponse

    return bool(getattr(KmsResponse, _MARKER, False))


def install() -> None:
    """Patch moto so KMS requests go through the sandbox (see module docstring)."""
    import moto.kms.models as kms_models
    from moto.kms.models import Key, KmsBackend
    from moto.kms.responses import KmsResponse

    from reconciler.sandbox import backend as rules
    from reconciler.sandbox import responses as wire

    with _lock:
        if getattr(KmsResponse, _MARKER, False):
            return

        # moto's Key.__init__ generates an RSA-2048 key for every key; make it lazy.
        kms_models.generate_private_key = rules.LazyPrivateKey  # type: ignore[assignment]

        # Key.to_dict: effective KeyState, CustomKeyStoreId, CloudHsmClusterId, XksKeyConfiguration
        Key._moto_to_dict = Key.to_dict  # type: ignore[attr-defined]

        def key_to_dict(self: Any) -> dict[str, Any]:
            backend = kms_models.kms_backends[self.account_id][self.region]
            return {"KeyMetadata": rules.key_metadata(backend, self)}

        Key.to_dict = key_to_dict  # type: ignore[method-assign]

        # KmsBackend: creation date and deletion scheduling from the sandbox clock.
        KmsBackend._moto_create_key = KmsBackend.create_key  # type: ignore[attr-defined]

        def create_key(self: Any, *args: Any, **kwargs: Any) -> Any:
            key = KmsBackend._moto_create_key(self, *args, **kwargs)  # type: ignore[attr-defined]
            key.creation_date = rules.epoch_seconds(rules.now())
            return key

        def schedule_key_deletion(self: Any, key_id: str, pending_window_in_days: int) -> float:
            key = rules.schedule_key_deletion(self, key_id, pending_window_in_days)
            return rules.epoch_seconds(key.deletion_date)

        def cancel_key_deletion(self: Any, key_id: str) -> None:
            rules.cancel_key_deletion(self, key_id)

        KmsBackend.create_key = create_key  # type: ignore[method-assign]
        KmsBackend._moto_schedule_key_deletion = KmsBackend.schedule_key_deletion  # type: ignore[attr-defined]
        KmsBackend.schedule_key_deletion = schedule_key_deletion  # type: ignore[method-assign]
        KmsBackend._moto_cancel_key_deletion = KmsBackend.cancel_key_deletion  # type: ignore[attr-defined]
        KmsBackend.cancel_key_deletion = cancel_key_deletion  # type: ignore[method-assign]

        # KmsResponse: the request bracket and the operations.
        for name, method in wire.WIRE_METHODS.items():
            original = KmsResponse.__dict__.get(name)
            if original is not None:
                setattr(KmsResponse, f"_moto_{name}", original)
            setattr(KmsResponse, name, method)
        KmsResponse._moto_call_action = KmsResponse.call_action  # type: ignore[attr-defined]
        KmsResponse.call_action = wire.sandbox_call_action  # type: ignore[method-assign]

        _cache_moto_dispatch()
        setattr(KmsResponse, _MARKER, True)


def _cache_moto_dispatch() -> None:
    """Two per-request costs of moto's dispatch whose answers never change in a process: the
    ``inspect.getmembers`` of the response class on every request (a few milliseconds each), and,
    in the server, the listing of moto's own package directory to route a request."""
    import functools

    import moto.backends
    import moto.core.responses

    names = moto.core.responses.method_names_from_class
    moto.core.responses.method_names_from_class = functools.lru_cache(maxsize=None)(names)  # type: ignore[assignment]
    modules = moto.backends.list_of_moto_modules
    cached_modules = functools.lru_cache(maxsize=1)(lambda: list(modules()))
    moto.backends.list_of_moto_modules = lambda: iter(cached_modules())  # type: ignore[assignment]
