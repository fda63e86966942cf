"""Timed transitions: what the emulator clock makes due.

Two things happen with time alone: a key scheduled for deletion is deleted when its DeletionDate
passes, and a store's CONNECTING / DISCONNECTING ends (:mod:`reconciler.sandbox.connection`).
Neither runs in the background: :func:`settle` applies whatever is due at the start of every
request (the wire layer calls it), so moving the clock (``sandbox advance``,
``settings.clock.advance`` in tests) is all it takes.

Keys pending deletion are kept in a heap ordered by DeletionDate
(``backend.sandbox_deletion_heap``), so a request costs nothing when nothing is due.
"""

from __future__ import annotations

import heapq
from datetime import datetime

from moto.kms.models import Key, KmsBackend

from reconciler.sandbox.connection import settle_due
from reconciler.sandbox.state import (
    PENDING_DELETION,
    bump_generation,
    custom_key_stores,
    naive_utc,
    now,
)


def deletion_heap(backend: KmsBackend) -> list[tuple[datetime, str]]:
    heap = backend.__dict__.get("sandbox_deletion_heap")
    if heap is None:
        # rebuilt from the keys (a backend pickled before the sandbox was installed)
        heap = [
            (naive_utc(k.deletion_date), k.id)
            for k in backend.keys.values()
            if k.key_state == PENDING_DELETION and k.deletion_date is not None
        ]
        heapq.heapify(heap)
        backend.sandbox_deletion_heap = heap  # type: ignore[attr-defined]
    return heap


def schedule_purge(backend: KmsBackend, key: Key, due: datetime) -> None:
    heapq.heappush(deletion_heap(backend), (naive_utc(due), key.id))


def purge_expired_keys(backend: KmsBackend, at: datetime | None = None) -> list[str]:
    """Delete every key whose DeletionDate has passed, with its aliases and tags.

    ScheduleKeyDeletion doc: "After the waiting period ends, KMS deletes the KMS key, its key
    material, and all KMS data associated with it, including all aliases that refer to it."
    Applies to every key in the backend, moto's ordinary keys included.
    """
    heap = deletion_heap(backend)
    if not heap:
        return []
    limit = naive_utc(at or now())
    purged: list[str] = []
    while heap and heap[0][0] <= limit:
        due, key_id = heapq.heappop(heap)
        key = backend.keys.get(key_id)
        if key is None or key.key_state != PENDING_DELETION or key.deletion_date is None:
            continue  # cancelled, or already gone
        if naive_utc(key.deletion_date) != due:
            continue  # rescheduled: a newer heap entry stands for it
        _remove_key(backend, key)
        purged.append(key_id)
    return purged


def _remove_key(backend: KmsBackend, key: Key) -> None:
    store_id = getattr(key, "custom_key_store_id", None)
    xks_key_id = getattr(key, "xks_key_id", None)
    if store_id and xks_key_id:
        store = custom_key_stores(backend).get(store_id)
        if store is not None and store.xks_keys.get(xks_key_id) == key.id:
            del store.xks_keys[xks_key_id]
    key.aliases.clear()
    backend.delete_key(key.id)  # moto: removes the key and its tags


def settle(backend: KmsBackend) -> bool:
    """Apply everything the clock has made due: the purge of keys past their DeletionDate and
    the end of CONNECTING/DISCONNECTING. Returns True when something changed."""
    at = now()
    changed = bool(purge_expired_keys(backend, at))
    for store in custom_key_stores(backend).values():
        changed = settle_due(backend, store, at) or changed
    if changed:
        bump_generation(backend)
    return changed
