"""The executor's key lookups, for its error paths: which key a lost CreateKey response made, and
when the last key of a store KMS refused to delete will be gone.

KMS cannot list the keys of one store, so both look at every key of the region (ListKeys, pages of
1000) and describe them (DescribeKey): concurrently, each call under the rate limiter, and only
the keys the run cannot place already. What the run knows comes first: the stores of the keys in
the plan's observed state and of the keys this run created (a key's store never changes), and the
DeletionDates KMS gave the keys this run scheduled.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Collection, Iterable, Iterator, TypeVar

from botocore.exceptions import ClientError

from reconciler.apply.retries import error_code

LIST_KEYS_PAGE = 1000  # ListKeys Limit: 1-1000
WORKERS = 16  # describes in flight per lookup (each one still waits for its token)

T = TypeVar("T")
R = TypeVar("R")


class KeyLookups:
    def __init__(self, call: Callable[..., dict], store_of: Callable[[str], str | None],
                 workers: int = WORKERS) -> None:
        """``call(operation, method, **kwargs)``: the executor's rate-limited, retried call;
        ``store_of(key_id)``: the store the run knows the key is in (None: it does not know)."""
        self.call = call
        self.store_of = store_of
        self.workers = workers

    def _map(self, fn: Callable[[T], R], items: list[T]) -> list[R]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            return list(pool.map(fn, items))

    def _describe(self, key_id: str) -> dict | None:
        try:
            return self.call("DescribeKey", "describe_key", KeyId=key_id)["KeyMetadata"]
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return None  # deleted since it was listed
            raise

    def describe_many(self, key_ids: Iterable[str]) -> list[dict]:
        """The KeyMetadata of these keys (the ones that still exist), described concurrently."""
        return [m for m in self._map(self._describe, list(key_ids)) if m is not None]

    def tags_many(self, key_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        def tags(key_id: str) -> dict[str, str]:
            found = self.call("ListResourceTags", "list_resource_tags", KeyId=key_id).get("Tags", [])
            return {t["TagKey"]: t["TagValue"] for t in found}

        ids = list(key_ids)
        return dict(zip(ids, self._map(tags, ids)))

    def scan(self, store_id: str, *, skip: Collection[str] = ()) -> Iterator[list[dict]]:
        """Per ListKeys page, the KeyMetadata of the keys of ``store_id`` among the keys the run
        cannot place in another store (and not in ``skip``)."""
        kwargs: dict[str, Any] = {"Limit": LIST_KEYS_PAGE}
        while True:
            page = self.call("ListKeys", "list_keys", **kwargs)
            ids = [e["KeyId"] for e in page.get("Keys", [])
                   if e["KeyId"] not in skip and self.store_of(e["KeyId"]) in (None, store_id)]
            yield [m for m in self.describe_many(ids) if m.get("CustomKeyStoreId") == store_id]
            if not page.get("Truncated"):
                return
            kwargs["Marker"] = page["NextMarker"]
