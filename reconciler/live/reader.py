"""Read live state through boto3: every custom key store, and the keys inside them.

KMS has no call that lists the keys of one store, so the reader lists every key in the region
(ListKeys, the largest page KMS allows) and describes each one (DescribeKey) to learn which store
it belongs to. Stores come from one paged DescribeCustomKeyStores chain, never one call per store
(that operation's quota is 5 per second). An account with no custom key store costs one call
(and the ListAliases chain, if the manifests declare aliases: one may name another key).

How it stays fast on an account with thousands of keys, without being throttled:

* every call takes a token from the per-operation :class:`~reconciler.aws.ratelimit.RateLimiter`
  (the KMS request quota table, overridable), so no operation is sent faster than its quota;
* DescribeKey calls start as soon as a ListKeys page arrives, on a pool of workers sized from
  quota x latency (Little's law; the latency is measured on the first call), with at most two
  calls per worker queued, so a long ListKeys chain never piles up work in memory;
* a key found inside a custom key store has its tags read right away by the same worker
  (ListResourceTags has its own quota, so the two overlap), and the ListAliases chain runs
  alongside on its own thread;
* DescribeKey payloads of keys outside custom key stores are dropped as soon as they are read;
  with ``wanted_aliases`` the alias index keeps only aliases of keys in custom key stores and the
  aliases the manifests declare (what the planner looks up);
* with an ``origin_cache`` (:mod:`reconciler.live.cache`), keys already known to be outside
  every custom key store are not described again: a key's store never changes.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Collection

from botocore.exceptions import ClientError

from reconciler.live.model import LiveKey, LiveState, LiveStore, LiveXks, aware_utc
from reconciler.aws.ratelimit import RateLimiter

LIST_KEYS_PAGE = 1000  # ListKeys Limit: 1-1000
LIST_ALIASES_PAGE = 100  # ListAliases Limit: 1-100
DESCRIBE_STORES_PAGE = 1000  # DescribeCustomKeyStores Limit: 1-1000
LIST_TAGS_PAGE = 50  # ListResourceTags Limit: 1-50

# the operations the worker pool runs concurrently (its size comes from their quotas)
POOLED_OPERATIONS = ("DescribeKey", "ListResourceTags")


@dataclass
class ReadStats:
    """What one read did (filled in when passed in :class:`ReadOptions`)."""

    keys_listed: int = 0
    keys_described: int = 0
    keys_skipped_cached: int = 0  # known from the origin cache to be outside every store
    keys_in_stores: int = 0
    workers: int = 0
    latency_seconds: float = 0.0


@dataclass
class ReadOptions:
    # worker threads for DescribeKey/ListResourceTags; None: sized from quota x latency
    workers: int | None = None
    limiter: RateLimiter = field(default_factory=RateLimiter)
    # KeyArn -> store id ("" outside any custom key store); facts that never change. Anything
    # with lookup_many(arns) -> {arn: store_id} and remember_many([(arn, store_id)]), e.g.
    # reconciler.live.cache.OriginCache
    origin_cache: Any = None
    # alias names the manifests declare; when given, the alias index keeps only those and the
    # aliases of keys in custom key stores (None: every alias in the region)
    wanted_aliases: Collection[str] | None = None
    stats: ReadStats | None = None




def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


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


def read_aliases(call: _Caller, keep: Callable[[str, str], bool] | None = None,
                 pending: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Every alias with a target, by target key id. With ``keep``, an alias ``keep`` refuses
    goes to ``pending`` instead (to be decided once the keys are known)."""
    by_key: dict[str, list[str]] = {}
    kwargs: dict[str, Any] = {"Limit": LIST_ALIASES_PAGE}
    while True:
        page = call("ListAliases", "list_aliases", **kwargs)
        for alias in page.get("Aliases", []):
            target = alias.get("TargetKeyId")
            if not target:
                continue
            name = alias["AliasName"]
            if keep is None or keep(name, target):
                by_key.setdefault(target, []).append(name)
            elif pending is not None:
                pending.setdefault(target, []).append(name)
        if not page.get("Truncated"):
            return by_key
        kwargs["Marker"] = page["NextMarker"]


def read_tags(call: _Caller, key_id: str) -> tuple[tuple[str, str], ...]:
    tags: list[tuple[str, str]] = []
    kwargs: dict[str, Any] = {"KeyId": key_id, "Limit": LIST_TAGS_PAGE}
    while True:
        page = call("ListResourceTags", "list_resource_tags", **kwargs)
        tags.extend((t["TagKey"], t["TagValue"]) for t in page.get("Tags", []))
        if not page.get("Truncated"):
            return tuple(sorted(tags))
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
        creation_date=aware_utc(entry.get("CreationDate")),
        cloudhsm_cluster_id=entry.get("CloudHsmClusterId"),
        trust_anchor_certificate=entry.get("TrustAnchorCertificate"),
        xks=xks,
        keys=keys,
    )


def _live_key(key_id: str, meta: dict, tags: tuple[tuple[str, str], ...]) -> LiveKey:
    """What the planner needs of a DescribeKey payload (the rest is dropped at once)."""
    return LiveKey(
        key_id=key_id,
        arn=meta.get("Arn", ""),
        store_id=meta["CustomKeyStoreId"],
        origin=meta.get("Origin", ""),
        key_state=meta.get("KeyState", ""),
        enabled=bool(meta.get("Enabled")),
        description=meta.get("Description", "") or "",
        deletion_date=aware_utc(meta.get("DeletionDate")),
        xks_key_id=(meta.get("XksKeyConfiguration") or {}).get("Id"),
        tags=tags,
    )


class _KeyReader:
    """Describes keys on a bounded pool, keeping only keys inside custom key stores."""

    def __init__(self, call: _Caller, workers: int, cache: Any, stats: ReadStats) -> None:
        self.call = call
        self.cache = cache
        self.stats = stats
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kms-read")
        self.slots = threading.BoundedSemaphore(workers * 2)  # queued + running
        self.lock = threading.Lock()
        self.keys: dict[str, LiveKey] = {}  # key id -> key, keys in custom key stores only
        self.store_key_ids: set[str] = set()
        self.facts: list[tuple[str, str]] = []  # (arn, store id) learnt, not yet in the cache
        self.error: BaseException | None = None

    def submit(self, key_id: str, arn: str) -> None:
        self.slots.acquire()
        if self.error is not None:
            self.slots.release()
            return
        future = self.pool.submit(self._read, key_id, arn)
        future.add_done_callback(self._done)

    def _done(self, future: Future) -> None:
        self.slots.release()
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            with self.lock:
                if self.error is None:
                    self.error = exc

    def _read(self, key_id: str, arn: str) -> None:
        if self.error is not None:
            return
        try:
            meta = self.call("DescribeKey", "describe_key", KeyId=key_id)["KeyMetadata"]
        except ClientError as exc:
            if _code(exc) == "NotFoundException":
                return  # deleted between ListKeys and DescribeKey
            raise
        store_id = meta.get("CustomKeyStoreId") or ""
        with self.lock:
            self.stats.keys_described += 1
            if self.cache is not None:
                self.facts.append((arn or meta.get("Arn", ""), store_id))
            if store_id:
                self.store_key_ids.add(key_id)
        if not store_id:
            return  # outside every custom key store: nothing of it is kept
        try:
            tags = read_tags(self.call, key_id)
        except ClientError as exc:
            if _code(exc) != "NotFoundException":
                raise
            with self.lock:
                self.store_key_ids.discard(key_id)
            return
        key = _live_key(key_id, meta, tags)
        with self.lock:
            self.keys[key_id] = key

    def is_store_key(self, key_id: str) -> bool:
        with self.lock:
            return key_id in self.store_key_ids

    def flush_facts(self) -> None:
        if self.cache is None:
            return
        with self.lock:
            facts, self.facts = self.facts, []
        if facts:
            self.cache.remember_many(facts)

    def finish(self) -> None:
        self.pool.shutdown(wait=True)
        self.flush_facts()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        with self.lock:
            if self.error is None:
                self.error = RuntimeError("read aborted")
        self.pool.shutdown(wait=True, cancel_futures=True)


def read_live(kms: Any, region: str, *, options: ReadOptions | None = None,
              now: Callable[[], datetime] | None = None) -> LiveState:
    options = options or ReadOptions()
    stats = options.stats if options.stats is not None else ReadStats()
    call = _Caller(kms, options.limiter)
    started = time.monotonic()
    stores = read_stores(call)
    latency = time.monotonic() - started
    read_at = now() if now else datetime.now(timezone.utc)
    if not stores:
        # no key is in a custom key store, but a declared alias may still name another key (the
        # planner refuses to move it): read the aliases, unless the manifests declare none
        if options.wanted_aliases is not None and not options.wanted_aliases:
            return LiveState(region=region, read_at=read_at)
        only = None if options.wanted_aliases is None else frozenset(options.wanted_aliases)
        by_key = read_aliases(call, None if only is None else (lambda name, target: name in only))
        return LiveState(region=region, read_at=read_at,
                         aliases={alias: key for key, names in by_key.items() for alias in names})

    store_ids = {s["CustomKeyStoreId"] for s in stores}
    cache = options.origin_cache
    workers = options.workers or options.limiter.concurrency(POOLED_OPERATIONS, latency)
    stats.workers, stats.latency_seconds = workers, latency
    reader = _KeyReader(call, max(1, workers), cache, stats)

    wanted = None if options.wanted_aliases is None else frozenset(options.wanted_aliases)
    pending: dict[str, list[str]] = {}
    keep = None if wanted is None else (lambda name, target: name in wanted or reader.is_store_key(target))
    aliases_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kms-aliases")
    aliases_future = aliases_pool.submit(read_aliases, call, keep, pending)
    try:
        kwargs: dict[str, Any] = {"Limit": LIST_KEYS_PAGE}
        while reader.error is None:
            page = call("ListKeys", "list_keys", **kwargs)
            entries = [(e["KeyId"], e.get("KeyArn") or "") for e in page.get("Keys", [])]
            stats.keys_listed += len(entries)
            known = cache.lookup_many([arn for _, arn in entries if arn]) if cache is not None else {}
            for key_id, arn in entries:
                if known.get(arn) == "":
                    # outside every custom key store when it was described, so still outside now
                    stats.keys_skipped_cached += 1
                    continue
                reader.submit(key_id, arn)
            reader.flush_facts()
            if not page.get("Truncated"):
                break
            kwargs["Marker"] = page["NextMarker"]
    except BaseException:
        reader.abort()
        aliases_pool.shutdown(wait=True, cancel_futures=True)
        raise
    try:
        reader.finish()
        aliases_by_key = aliases_future.result()
    finally:
        aliases_pool.shutdown(wait=True)

    # aliases read before their key was described: keep those of keys in custom key stores
    for target, names in pending.items():
        if target in reader.keys:
            aliases_by_key.setdefault(target, []).extend(names)
    pending.clear()

    keys_by_store: dict[str, list[LiveKey]] = {}
    for key_id, key in sorted(reader.keys.items()):
        if key.store_id not in store_ids:
            continue  # a store created after DescribeCustomKeyStores answered: seen next time
        aliases = tuple(sorted(aliases_by_key.get(key_id, ())))
        keys_by_store.setdefault(key.store_id, []).append(replace(key, aliases=aliases))
    stats.keys_in_stores = sum(len(keys) for keys in keys_by_store.values())
    live_stores = {
        s["CustomKeyStoreName"]: _store_from(s, tuple(keys_by_store.get(s["CustomKeyStoreId"], [])))
        for s in stores
    }
    alias_index = {alias: key for key, names in aliases_by_key.items() for alias in names}
    return LiveState(region=region, stores=live_stores, aliases=alias_index, read_at=read_at)


def declared_aliases(desired: Any) -> frozenset[str]:
    """The alias names a DesiredState declares (what the planner looks up in the alias index)."""
    return frozenset(k.alias for s in desired.stores for k in s.keys if k.alias)


def read_live_cli(kms: Any, region: str, *, now: Callable[[], datetime] | None = None,
                  desired: Any = None) -> LiveState:
    """The read ``plan`` and ``apply`` make: the request quotas of the table (or
    ``RECONCILER_KMS_QUOTAS``), the on-disk origin cache (``RECONCILER_CACHE_DIR``, default
    ``.reconciler/cache``; ``RECONCILER_CACHE=off`` disables it) and, given the desired state,
    an alias index restricted to what the planner needs."""
    from reconciler.live.cache import OriginCache

    cache = OriginCache.default()
    try:
        options = ReadOptions(origin_cache=cache,
                              wanted_aliases=declared_aliases(desired) if desired is not None else None)
        return read_live(kms, region, options=options, now=now)
    finally:
        if cache is not None:
            cache.close()
