"""The live-state reader's cost: exactly the calls it must make, none throttled, and the origin
cache's savings without a wrong answer (issue 6). Small fleets, quotas on, a few seconds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reconciler.live.cache import MemoryOriginCache, OriginCache
from reconciler.live.reader import ReadOptions, ReadStats, read_live
from reconciler.aws.ratelimit import RateLimiter, parse_quotas
from reconciler.sandbox import responses
from tests.conftest import make_client

STORES, KEYS, UNRELATED = 3, 4, 30
RESERVED_ALIASES = 14  # moto lists these aws/ aliases in every region
# low enough that an unlimited reader would be throttled (the emulator's bucket holds one
# second of quota), high enough that the test stays fast
QUOTAS = {"DescribeKey": 20.0, "ListResourceTags": 10.0, "ListKeys": 5.0, "ListAliases": 5.0,
          "DescribeCustomKeyStores": 5.0}


@pytest.fixture
def fleet(kms, sandbox, xks_store) -> dict[str, Any]:
    """STORES connected XKS stores with KEYS keys each (alias + tag), UNRELATED other keys (every
    other one with an alias); then the request quotas on."""
    stores: dict[str, str] = {}
    store_keys: dict[str, str] = {}
    for s in range(STORES):
        store_id = xks_store(f"perf-{s}", connect=True)
        stores[f"perf-{s}"] = store_id
        for k in range(KEYS):
            key_id = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId=f"perf-{s}-{k}",
                                    Tags=[{"TagKey": "team", "TagValue": "perf"}])["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=f"alias/perf-{s}-{k}", TargetKeyId=key_id)
            store_keys[key_id] = store_id
    unrelated = []
    for u in range(UNRELATED):
        key_id = kms.create_key(Description=f"app {u}")["KeyMetadata"]["KeyId"]
        if u % 2 == 0:
            kms.create_alias(AliasName=f"alias/app-{u}", TargetKeyId=key_id)
        unrelated.append(key_id)
    sandbox.faults.quotas_enabled = True
    sandbox.faults.quota_overrides = dict(QUOTAS)
    responses.quota_buckets.reset()
    responses.call_stats.reset()
    return {"stores": stores, "store_keys": store_keys, "unrelated": unrelated}


def read(cache: Any = None, wanted: Any = None, stats: ReadStats | None = None):
    # botocore retries off: a throttle would surface here as an error
    client = make_client("kms")
    responses.call_stats.reset()
    responses.quota_buckets.reset()
    options = ReadOptions(limiter=RateLimiter(QUOTAS), origin_cache=cache, wanted_aliases=wanted, stats=stats)
    return read_live(client, "us-east-1", options=options)


def expected_calls(described: int) -> dict[str, int]:
    aliases = STORES * KEYS + math.ceil(UNRELATED / 2) + RESERVED_ALIASES
    return {"DescribeCustomKeyStores": 1, "ListKeys": 1, "ListAliases": math.ceil(aliases / 100),
            "DescribeKey": described, "ListResourceTags": STORES * KEYS}


def test_reader_makes_exactly_the_calls_it_must_and_is_never_throttled(fleet):
    live = read()

    assert responses.call_stats.snapshot()["calls"] == expected_calls(STORES * KEYS + UNRELATED)
    assert responses.call_stats.snapshot()["throttled"] == {}
    assert sorted(live.stores) == sorted(fleet["stores"])
    assert {k.key_id: s.id for s in live.stores.values() for k in s.keys} == fleet["store_keys"]
    assert all(k.tags == (("team", "perf"),) and len(k.aliases) == 1 for s in live.stores.values() for k in s.keys)


def test_without_the_limiter_the_same_read_would_be_throttled(fleet):
    """The quotas of this test really bite: the limiter is what keeps the read above clean."""
    from botocore.exceptions import ClientError

    client = make_client("kms")
    responses.quota_buckets.reset()
    with pytest.raises(ClientError, match="ThrottlingException"):
        read_live(client, "us-east-1", options=ReadOptions(limiter=RateLimiter(enabled=False), workers=16))


def test_second_read_with_the_cache_describes_only_keys_in_stores(fleet, tmp_path):
    with OriginCache(tmp_path / "origins.sqlite3") as cache:
        first = read(cache)
        assert len(cache) == STORES * KEYS + UNRELATED
    with OriginCache(tmp_path / "origins.sqlite3") as cache:
        stats = ReadStats()
        second = read(cache, stats=stats)
    assert responses.call_stats.snapshot()["calls"] == expected_calls(STORES * KEYS)
    assert responses.call_stats.snapshot()["throttled"] == {}
    assert stats.keys_skipped_cached == UNRELATED
    assert second.to_dict() == first.to_dict()


def test_a_stale_cache_never_makes_the_read_wrong(fleet, kms, sandbox, xks_store):
    cache = MemoryOriginCache()
    read(cache)
    sandbox.faults.quotas_enabled = False
    # a key the cache knows is deleted; a new store appears with a key; a new unrelated key
    gone = fleet["unrelated"][0]
    kms.schedule_key_deletion(KeyId=gone, PendingWindowInDays=7)
    sandbox.clock.advance(8 * 86400)
    new_store = xks_store("perf-new", connect=True)
    new_key = kms.create_key(CustomKeyStoreId=new_store, Origin="EXTERNAL_KEY_STORE", XksKeyId="new-1")["KeyMetadata"]["KeyId"]
    kms.create_key(Description="another app key")
    sandbox.faults.quotas_enabled = True

    cached = read(cache)
    # described: the keys of the stores (old and new) and the one unrelated key not seen before
    assert responses.call_stats.snapshot()["calls"]["DescribeKey"] == (STORES * KEYS + 1) + 1
    fresh = read(None)
    assert responses.call_stats.snapshot()["calls"]["DescribeKey"] == (STORES * KEYS + 1) + UNRELATED
    assert cached.to_dict() == fresh.to_dict()
    assert [k.key_id for k in cached.stores["perf-new"].keys] == [new_key]
    assert gone not in {k for k in cached.aliases.values()}
    read(cache)
    assert responses.call_stats.snapshot()["calls"]["DescribeKey"] == STORES * KEYS + 1
    assert responses.call_stats.snapshot()["throttled"] == {}


def test_alias_index_keeps_only_what_the_planner_needs(fleet):
    full = read()
    restricted = read(wanted={"alias/app-2", "alias/not-there"})
    assert "alias/app-4" in full.aliases and "alias/app-4" not in restricted.aliases
    assert restricted.aliases["alias/app-2"] == full.aliases["alias/app-2"]  # declared: kept
    assert all(restricted.aliases[f"alias/perf-{s}-{k}"] for s in range(STORES) for k in range(KEYS))
    managed = set(fleet["stores"])
    assert restricted.digest(only=managed) == full.digest(only=managed)
    assert restricted.stores == full.stores


def test_an_account_without_custom_key_stores_costs_one_call(kms, sandbox):
    """Or two, when the manifests declare aliases (one of them may already name another key)."""
    kms.create_key()
    responses.call_stats.reset()
    live = read_live(make_client("kms"), "us-east-1", options=ReadOptions(wanted_aliases=()))
    assert not live.stores
    assert responses.call_stats.snapshot()["calls"] == {"DescribeCustomKeyStores": 1}
    responses.call_stats.reset()
    read_live(make_client("kms"), "us-east-1", options=ReadOptions(wanted_aliases={"alias/a"}))
    assert responses.call_stats.snapshot()["calls"] == {"DescribeCustomKeyStores": 1, "ListAliases": 1}


def test_quota_overrides_from_the_environment(monkeypatch):
    monkeypatch.setenv("RECONCILER_KMS_QUOTAS", "DescribeKey=100, CreateKey=2.5")
    limiter = RateLimiter({"CreateKey": 1})
    assert limiter.quotas["DescribeKey"] == 100 and limiter.quotas["CreateKey"] == 1
    assert limiter.quotas["ListKeys"] == 500
    assert parse_quotas("") == {}
    with pytest.raises(ValueError):
        parse_quotas("DescribeKey=fast")


def test_concurrency_follows_quota_times_latency():
    limiter = RateLimiter({"DescribeKey": 2000, "ListResourceTags": 2000})
    # 2 x 2000 x 0.95 per second, 20 ms each: 76 in flight, x1.5 slack
    assert limiter.concurrency(["DescribeKey", "ListResourceTags"], 0.020) == 114
    assert limiter.concurrency(["DescribeKey"], 0.0001) == 4
    assert limiter.concurrency(["DescribeKey"], 10.0) == 128
