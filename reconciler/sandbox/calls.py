"""What every operation handler needs: the backend of the request, a key by any of its names, and
moto's own handler for what the emulator leaves to moto.

A handler is ``handler(response, params) -> dict``: ``response`` is moto's ``KmsResponse`` for
the request (region, account, moto's helpers), ``params`` the input already checked against the
model (:func:`reconciler.sandbox.protocol.read_input`). The dict it returns is written with the
operation's output shape; an error it raises is rendered as the protocol's JSON error.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.kms.models import Key, KmsBackend, kms_backends

from reconciler.sandbox import exceptions as exc


def backend_of(response: Any) -> KmsBackend:
    # fetched fresh per request: the host may replace backend objects when it reloads
    return kms_backends[response.current_account][response.region]


def moto(response: Any, operation_method: str) -> dict[str, Any]:
    """Run moto's handler of the operation and return its JSON result as a dict."""
    from moto.kms.responses import KmsResponse

    text = getattr(KmsResponse, operation_method)(response)
    result = json.loads(text) if text else None
    return result if isinstance(result, dict) else {}


def find_key(response: Any, key_id: str, *, aliases: bool = True) -> Key:
    """The key named by a key id, key ARN, or (when ``aliases``) alias name or alias ARN:
    NotFoundException as KMS answers it otherwise."""
    backend = backend_of(response)
    if aliases:
        response._validate_key_id(key_id)
    else:
        response._validate_cmk_id(key_id)
    key = backend.keys.get(backend.any_id_to_key_id(key_id))
    if key is None:
        raise exc.NotFoundException(f"Key '{key_id}' does not exist")
    return key


def find_key_quietly(response: Any, key_id: Any, *, aliases: bool = True) -> Key | None:
    """The key, or None when there is none (the caller lets another check report it)."""
    if not isinstance(key_id, str) or not key_id:
        return None
    try:
        return find_key(response, key_id, aliases=aliases)
    except JsonRESTError:
        return None
