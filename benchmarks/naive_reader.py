"""The naive reader the benchmark compares against: what a tool that reads one resource per call
does. Sequential, no rate limiter, default page sizes, one DescribeCustomKeyStores per store (after
listing them), one DescribeKey per key, one ListResourceTags per key in a store, then the aliases.

It builds the same LiveState as :func:`reconciler.live.reader.read_live_cli` (with the same alias
restriction), so the plan that follows is the same; only the way of reading differs.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

from botocore.exceptions import ClientError

from reconciler.live.model import LiveState
from reconciler.live.reader import _live_key, _store_from, declared_aliases


def naive_read(kms: Any, region: str, *, now: Callable[[], datetime] | None = None, desired: Any = None,
               phase_budget: float | None = None, timing: dict[str, list[float]] | None = None) -> LiveState:
    """``phase_budget``: seconds each phase (the stores, the keys, the tags, the aliases) may run
    before the rest of it is skipped; ``timing`` receives {operation: [calls, seconds]} so the
    benchmark can project what was skipped (the reader is sequential: its time is the sum)."""
    timing = timing if timing is not None else {}
    phase = {"deadline": None}

    def start_phase() -> None:
        phase["deadline"] = None if phase_budget is None else time.monotonic() + phase_budget

    def over() -> bool:
        return phase["deadline"] is not None and time.monotonic() > phase["deadline"]

    def call(operation: str, method: str, **kwargs: Any) -> dict:
        started = time.monotonic()
        try:
            return getattr(kms, method)(**kwargs)
        finally:
            spent = timing.setdefault(operation, [0, 0.0])
            spent[0] += 1
            spent[1] += time.monotonic() - started

    start_phase()
    entries: list[dict] = []
    kwargs: dict[str, Any] = {}
    while True:  # the store ids...
        page = call("DescribeCustomKeyStores", "describe_custom_key_stores", **kwargs)
        entries.extend(page.get("CustomKeyStores", []))
        if not page.get("Truncated"):
            break
        kwargs["Marker"] = page["NextMarker"]
    stores = []
    for e in entries:  # ...then each store read on its own, as a per-resource refresh does
        if over():
            stores.append(e)
            continue
        stores.append(call("DescribeCustomKeyStores", "describe_custom_key_stores",
                           CustomKeyStoreId=e["CustomKeyStoreId"])["CustomKeyStores"][0])
    read_at = now() if now else datetime.now(timezone.utc)
    metadata: list[dict] = []  # every key's DescribeKey payload
    kwargs = {}
    start_phase()
    while not over():
        page = call("ListKeys", "list_keys", **kwargs)
        for entry in page.get("Keys", []):
            if over():
                break
            try:
                metadata.append(call("DescribeKey", "describe_key", KeyId=entry["KeyId"])["KeyMetadata"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                    raise
        if not page.get("Truncated"):
            break
        kwargs["Marker"] = page["NextMarker"]
    store_ids = {s["CustomKeyStoreId"] for s in stores}
    keys = {}
    start_phase()
    for meta in metadata:
        if over():
            break
        if meta.get("CustomKeyStoreId") in store_ids:
            tags: list[tuple[str, str]] = []
            kwargs = {"KeyId": meta["KeyId"]}
            while True:
                page = call("ListResourceTags", "list_resource_tags", **kwargs)
                tags.extend((t["TagKey"], t["TagValue"]) for t in page.get("Tags", []))
                if not page.get("Truncated"):
                    break
                kwargs["Marker"] = page["NextMarker"]
            keys[meta["KeyId"]] = _live_key(meta["KeyId"], meta, tuple(sorted(tags)))
    aliases: dict[str, list[str]] = {}
    kwargs = {}
    start_phase()
    while not over():
        page = call("ListAliases", "list_aliases", **kwargs)
        for alias in page.get("Aliases", []):
            if alias.get("TargetKeyId"):
                aliases.setdefault(alias["TargetKeyId"], []).append(alias["AliasName"])
        if not page.get("Truncated"):
            break
        kwargs["Marker"] = page["NextMarker"]
    wanted = declared_aliases(desired) if desired is not None else None
    from dataclasses import replace

    by_store: dict[str, list] = {}
    for key_id, key in sorted(keys.items()):
        by_store.setdefault(key.store_id, []).append(replace(key, aliases=tuple(sorted(aliases.get(key_id, ())))))
    live_stores = {s["CustomKeyStoreName"]: _store_from(s, tuple(by_store.get(s["CustomKeyStoreId"], []))) for s in stores}
    index = {a: k for k, names in aliases.items() for a in names
             if wanted is None or k in keys or a in wanted}
    return LiveState(region=region, stores=live_stores, aliases=index, read_at=read_at)
