"""A local cache of facts about KMS keys that never change: which custom key store a key is in.

A key's Origin and CustomKeyStoreId are fixed when it is created, so once DescribeKey has said
that a key is outside every custom key store, that stays true for as long as the key exists. The
reader records every key it describes here and, on the next plan, skips DescribeKey for keys the
cache says are outside every store. Keys inside custom key stores are always described (their
state, description and deletion date change), and so is any key the cache has not seen.

A stale entry cannot make a plan wrong: the reader only looks up keys that ListKeys returns now,
so a cached key that was deleted is never consulted, and a fact about a key that exists is still
true. Entries are keyed by the key ARN, which names the partition, region and account, so one
cache serves every account and region without mixing them up.

The facts live in SQLite (``origins.sqlite3`` in the cache directory, by default
``.reconciler/cache/``, or ``RECONCILER_CACHE_DIR``), looked up one ListKeys page at a time, so
the cache costs no memory per key. ``RECONCILER_CACHE=off`` disables it; deleting the directory
(or :func:`clear`) empties it. A cache that cannot be opened or read is ignored, never an error.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Iterable, Sequence

CACHE_DIR_ENV = "RECONCILER_CACHE_DIR"
CACHE_SWITCH_ENV = "RECONCILER_CACHE"
DEFAULT_DIR = Path(".reconciler") / "cache"
FILE_NAME = "origins.sqlite3"
_CHUNK = 500  # host parameters per query (older SQLite builds allow 999)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_DIR)


def cache_enabled() -> bool:
    return os.environ.get(CACHE_SWITCH_ENV, "on").strip().lower() not in ("off", "0", "false", "no")


class OriginCache:
    """KeyArn -> CustomKeyStoreId ("" for a key outside every custom key store)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self.path), timeout=10, check_same_thread=False,
                                 isolation_level=None)
            db.execute("CREATE TABLE IF NOT EXISTS origins "
                       "(arn TEXT PRIMARY KEY, store_id TEXT NOT NULL) WITHOUT ROWID")
            self._db = db
        except (OSError, sqlite3.Error):
            self._db = None  # unusable: behave as an empty cache that forgets

    @classmethod
    def default(cls) -> "OriginCache | None":
        """The cache the CLI uses, or None when ``RECONCILER_CACHE=off``."""
        if not cache_enabled():
            return None
        return cls(cache_dir() / FILE_NAME)

    @property
    def usable(self) -> bool:
        return self._db is not None

    def lookup_many(self, arns: Sequence[str]) -> dict[str, str]:
        """The known facts for ``arns`` (unknown ones are absent)."""
        found: dict[str, str] = {}
        if self._db is None or not arns:
            return found
        try:
            with self._lock:
                for start in range(0, len(arns), _CHUNK):
                    chunk = list(arns[start:start + _CHUNK])
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(f"SELECT arn, store_id FROM origins WHERE arn IN ({marks})", chunk)
                    found.update(rows)
        except sqlite3.Error:
            return {}
        return found

    def remember_many(self, facts: Iterable[tuple[str, str]]) -> None:
        rows = list(facts)
        if self._db is None or not rows:
            return
        try:
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR IGNORE INTO origins (arn, store_id) VALUES (?, ?)", rows)
                self._db.execute("COMMIT")
        except sqlite3.Error:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    # single-fact forms
    def lookup(self, arn: str) -> str | None:
        return self.lookup_many([arn]).get(arn)

    def remember(self, arn: str, store_id: str) -> None:
        self.remember_many([(arn, store_id)])

    def __len__(self) -> int:
        if self._db is None:
            return 0
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM origins").fetchone()[0])

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
                self._db = None

    def __enter__(self) -> "OriginCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MemoryOriginCache:
    """The same interface over a dict (tests, one-process runs)."""

    def __init__(self) -> None:
        self.facts: dict[str, str] = {}
        self._lock = threading.Lock()

    def lookup_many(self, arns: Sequence[str]) -> dict[str, str]:
        with self._lock:
            return {a: self.facts[a] for a in arns if a in self.facts}

    def remember_many(self, facts: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            for arn, store_id in facts:
                self.facts.setdefault(arn, store_id)

    def lookup(self, arn: str) -> str | None:
        return self.lookup_many([arn]).get(arn)

    def remember(self, arn: str, store_id: str) -> None:
        self.remember_many([(arn, store_id)])

    def __len__(self) -> int:
        return len(self.facts)

    def close(self) -> None:
        pass


def clear(directory: str | os.PathLike[str] | None = None) -> bool:
    """Delete the cache file; True when there was one."""
    path = Path(directory) / FILE_NAME if directory is not None else cache_dir() / FILE_NAME
    removed = False
    for candidate in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal")):
        try:
            candidate.unlink()
            removed = removed or candidate == path
        except FileNotFoundError:
            pass
    return removed
