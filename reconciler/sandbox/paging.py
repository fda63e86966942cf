"""Paging: Limit / Marker / NextMarker / Truncated, for every list operation the emulator serves.

KMS's markers are opaque ("Do not attempt to construct this value. Use only the value of NextMarker
from the truncated response you just received"); a marker the emulator did not issue, or issued
for another list (another operation, or the same one with other parameters than Limit and Marker:
another KeyId, another store), is InvalidMarkerException (ValidationException for ListKeyPolicies,
whose error list does not have it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Sequence, TypeVar

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.apimodel import error_allowed

T = TypeVar("T")


def _encode_marker(kind: str, index: int, next_id: str, last_id: str) -> str:
    raw = "\x1f".join((kind, str(index), next_id, last_id)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _list_of(kind: str, params: dict[str, Any] | None) -> str:
    """Which list a marker belongs to: the operation and its parameters other than Limit and Marker."""
    if not params:
        return kind
    rest = {k: v for k, v in params.items() if k not in ("Limit", "Marker")}
    if not rest:
        return kind
    digest = hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{kind}/{digest}"


def _decode_marker(kind: str, marker: str, scope: str | None = None) -> tuple[int, str, str]:
    try:
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
        got_kind, index, next_id, last_id = raw.split("\x1f", 3)
        if got_kind != (scope or kind):
            raise ValueError(kind)
        return int(index), next_id, last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        message = (
            "The request was rejected because the marker that specifies where pagination "
            "should next begin is not valid."
        )
        # ``kind`` is the operation; one whose error list lacks InvalidMarkerException
        # (ListKeyPolicies) answers the protocol's ValidationException
        if not error_allowed(kind, "InvalidMarkerException"):
            raise exc.ValidationException(message) from None
        raise exc.InvalidMarkerException(message) from None


def paginate(
    items: Sequence[T],
    identity: Any,
    *,
    kind: str,
    limit: int,
    marker: str | None,
    params: dict[str, Any] | None = None,
) -> tuple[list[T], str | None]:
    """One page of ``items`` (a stable order) after ``marker``; returns (page, next_marker).

    The marker names the next item to return and the last one returned, so a page boundary
    survives items being added or removed elsewhere in the list (e.g. keys purged between two
    pages): the next page starts at the named next item, else after the named last item, else
    at the former position. With the request's ``params``, the marker is valid only for a request
    with the same parameters apart from Limit and Marker.
    """
    scope = _list_of(kind, params)
    start = 0
    if marker is not None:
        index, next_id, last_id = _decode_marker(kind, marker, scope)
        start = min(max(index, 0), len(items))
        if not (start < len(items) and identity(items[start]) == next_id):
            positions = {identity(item): position for position, item in enumerate(items)}
            if next_id in positions:
                start = positions[next_id]
            elif last_id in positions:
                start = positions[last_id] + 1
    page = list(items[start : start + limit])
    end = start + len(page)
    if end < len(items) and page:
        return page, _encode_marker(scope, end, identity(items[end]), identity(page[-1]))
    return page, None


def page_result(member: str, items: list[Any], next_marker: str | None) -> dict[str, Any]:
    """A list response: the items, Truncated, and NextMarker only when truncated ("When
    Truncated is true, this element is present and contains the value to use for the Marker
    parameter in a subsequent request")."""
    result: dict[str, Any] = {member: items, "Truncated": next_marker is not None}
    if next_marker is not None:
        result["NextMarker"] = next_marker
    return result
