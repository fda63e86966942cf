"""Read live state through boto3: every custom key store, and the keys inside them.

KMS has no call that lists the keys of one store, so the reader lists every key in the region
(ListKeys, the largest page KMS allows) and describes each one (DescribeKey, concurrently, as the
pages arrive) to learn which store it belongs to. Stores come from one paged
DescribeCustomKeyStores chain, never one call per store (that operation's quota is 5 per second).
Only keys inside custom key stores are kept; an account with no custom key store costs one call.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from botocore.exceptions import ClientError

from reconciler.live.model import LiveKey, LiveState, LiveStore, LiveXks
from reconciler.ratelimit import RateLimiter

LIST_KEYS_PAGE = 1000  # ListKeys Limit: 1-1000
LIST_ALIASES_PAGE = 100  # ListAliases Limit: 1-100
DESCRIBE_STORES_PAGE = 1000  # DescribeCustomKeyStores Limit: 1-1000


@dataclass
class ReadOptions:
    workers: int = 16
    limiter: RateLimiter = field(default_factory=RateLimiter)
    # KeyId -> store id (or "" for keys outside any custom key store); facts that never change
    origin_cache: Any = None


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class _Caller:
    """Rate-limited calls to one client."""

    def __init__(self, client: Any, limiter: RateLimiter) -> None:
        self.client = client
        self.limiter = limiter

    def __call__(self, operation: str, method: str, **kwargs: Any) -> dict:
        self.limiter.acquire(operation)
        return getattr(self.client, method)(**kwargs)


def read_stores(call: _Caller) -> list[dict]:
    stores: list[dict] = []
    kwargs: dict[str, Any] = {"Limit": DESCRIBE_STORES_PAGE}
    while True:
        page = call("DescribeCustomKeyStores", "describe_custom_key_stores", **kwargs)
        stores.extend(page.get("CustomKeyStores", []))
        if not page.get("Truncated"):
            return stores
        kwargs["Marker"] = page["NextMarker"]


def read_aliases(call: _Caller) -> dict[str, list[str]]:
    by_key: dict[str, list[str]] = {}
    kwargs: dict[str, Any] = {"Limit": LIST_ALIASES_PAGE}
    while True:
        page = call("ListAliases", "list_aliases", **kwargs)
        for alias in page.get("Aliases", []):
            target = alias.get("TargetKeyId")
            if target:
                by_key.setdefault(target, []).append(alias["AliasName"])
        if not page.get("Truncated"):
            return by_key
        kwargs["Marker"] = page["NextMarker"]


def _store_from(entry: dict, keys: tuple[LiveKey, ...]) -> LiveStore:
    xks = None
    proxy = entry.get("XksProxyConfiguration")
    if proxy:
        xks = LiveXks(
            connectivity=proxy.get("Connectivity", ""),
            uri_endpoint=proxy.get("UriEndpoint", ""),
            uri_path=proxy.get("UriPath", ""),
            access_key_id=proxy.get("AccessKeyId"),
            vpc_endpoint_service_name=proxy.get("VpcEndpointServiceName"),
            vpc_endpoint_service_owner=proxy.get("VpcEndpointServiceOwner"),
        )
    return LiveStore(
        id=entry["CustomKeyStoreId"],
        name=entry["CustomKeyStoreName"],
        type=entry.get("CustomKeyStoreType", "AWS_CLOUDHSM"),
        connection_state=entry.get("ConnectionState", "DISCONNECTED"),
        connection_error_code=entry.get("ConnectionErrorCode"),
        creation_date=_aware(entry.get("CreationDate")),
        cloudhsm_cluster_id=entry.get("CloudHsmClusterId"),
        trust_anchor_certificate=entry.get("TrustAnchorCertificate"),
        xks=xks,
        keys=keys,
    )


def read_live(kms: Any, region: str, *, options: ReadOptions | None = None,
              now: Callable[[], datetime] | None = None) -> LiveState:
    options = options or ReadOptions()
    call = _Caller(kms, options.limiter)
    stores = read_stores(call)
    read_at = now() if now else datetime.now(timezone.utc)
    if not stores:
        return LiveState(region=region, read_at=read_at)

    store_ids = {s["CustomKeyStoreId"] for s in stores}
    cache = options.origin_cache
    metadata: dict[str, dict] = {}
    lock = threading.Lock()

    def describe(key_id: str) -> None:
        try:
            meta = call("DescribeKey", "describe_key", KeyId=key_id)["KeyMetadata"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException":
                return  # deleted between ListKeys and DescribeKey
            raise
        store_id = meta.get("CustomKeyStoreId") or ""
        if cache is not None:
            cache.remember(key_id, store_id)
        if store_id in store_ids:
            with lock:
                metadata[key_id] = meta

    with ThreadPoolExecutor(max_workers=max(1, options.workers)) as pool:
        aliases_future: Future = pool.submit(read_aliases, call)
        futures: list[Future] = []
        kwargs: dict[str, Any] = {"Limit": LIST_KEYS_PAGE}
        while True:
            page = call("ListKeys", "list_keys", **kwargs)
            for entry in page.get("Keys", []):
                key_id = entry["KeyId"]
                known = cache.lookup(key_id) if cache is not None else None
                if known is not None and known not in store_ids:
                    continue  # a key outside every live custom key store: nothing to read
                futures.append(pool.submit(describe, key_id))
            if not page.get("Truncated"):
                break
            kwargs["Marker"] = page["NextMarker"]
        for future in futures:
            future.result()
        aliases_by_key = aliases_future.result()

        def tags_of(key_id: str) -> tuple[tuple[str, str], ...]:
            tags: list[tuple[str, str]] = []
            kwargs: dict[str, Any] = {"KeyId": key_id, "Limit": 50}
            while True:
                page = call("ListResourceTags", "list_resource_tags", **kwargs)
                tags.extend((t["TagKey"], t["TagValue"]) for t in page.get("Tags", []))
                if not page.get("Truncated"):
                    return tuple(sorted(tags))
                kwargs["Marker"] = page["NextMarker"]

        tag_futures = {key_id: pool.submit(tags_of, key_id) for key_id in sorted(metadata)}
        tags_by_key = {}
        for key_id, future in tag_futures.items():
            try:
                tags_by_key[key_id] = future.result()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NotFoundException":
                    raise
                metadata.pop(key_id, None)

    keys_by_store: dict[str, list[LiveKey]] = {}
    for key_id, meta in sorted(metadata.items()):
        keys_by_store.setdefault(meta["CustomKeyStoreId"], []).append(
            LiveKey(
                key_id=key_id,
                arn=meta.get("Arn", ""),
                store_id=meta["CustomKeyStoreId"],
                origin=meta.get("Origin", ""),
                key_state=meta.get("KeyState", ""),
                enabled=bool(meta.get("Enabled")),
                description=meta.get("Description", "") or "",
                deletion_date=_aware(meta.get("DeletionDate")),
                xks_key_id=(meta.get("XksKeyConfiguration") or {}).get("Id"),
                aliases=tuple(sorted(aliases_by_key.get(key_id, []))),
                tags=tags_by_key.get(key_id, ()),
            )
        )
    live_stores = {
        s["CustomKeyStoreName"]: _store_from(s, tuple(keys_by_store.get(s["CustomKeyStoreId"], [])))
        for s in stores
    }
    alias_index = {alias: key for key, names in aliases_by_key.items() for alias in names}
    return LiveState(region=region, stores=live_stores, aliases=alias_index, read_at=read_at)
