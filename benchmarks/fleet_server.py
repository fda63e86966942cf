"""The benchmark's emulator: a fleet of custom key stores and keys in the KMS sandbox, served over
HTTP from a process of its own (so the emulator's CPU does not share the reader's interpreter).

Started by ``plan_bench.py``; not a user command. ``python benchmarks/fleet_server.py S K U``
builds S connected external key stores with K keys each (an alias and a tag per key) and U keys
outside any custom key store (every other one with an alias), straight in the emulator's backend,
then prints one JSON line ``{"url": ...}`` and serves until its standard input closes.
``... S K U ACCOUNTS REGIONS`` (comma-separated) builds that fleet in every account and region
(the fleet row), and lets STS assume ``arn:aws:iam::ACCOUNT:role/reconciler`` in each account.

Besides the KMS API and the sandbox control endpoint, it answers ``/_bench/*``:
``GET /_bench/stats`` (call and throttle counters, calls per account and region, the process CPU
time), ``POST /_bench/reset`` (zeroes the counters and empties the quota buckets),
``POST /_bench/faults`` (latency_ms, quotas_enabled, quota_overrides; for the apply benchmark also
throttle_rate, seed, connect_delay_seconds, disconnect_delay_seconds, custom_key_store_quota), ``POST /_bench/advance``
(moves the emulator clock by ``seconds``) and ``GET /_bench/inventory`` (what the account holds:
stores by name, keys by store and XksKeyId, aliases; for the duplicate checks).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable

ACCOUNT = "123456789012"
REGION = "us-east-1"
XKS_ACCESS_KEY_ID = "ABCDEFGHIJKLMNOPQRST2345"
XKS_SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="


def store_name(i: int, prefix: str = "bench") -> str:
    return f"{prefix}-{i:03d}"


def xks_key_id(store: int, key: int, prefix: str = "bench") -> str:
    return f"{prefix}-{store:03d}-key-{key:05d}"


def key_alias(store: int, key: int, prefix: str = "bench") -> str:
    return f"alias/{prefix}-{store:03d}/key-{key:05d}"


# -- the fleet row: the same stores and keys in every account and region ------------------------

ROLE_EXTERNAL_ID = "plan-bench"


def role_arn(account: str) -> str:
    """The role the plan assumes in ``account`` (reconciler.yaml's roleArn; the sandbox knows it)."""
    return f"arn:aws:iam::{account}:role/reconciler"


def target_prefix(a: int, r: int) -> str:
    """The names' prefix of the stores of the a-th account's r-th region (names unique in the fleet)."""
    return f"bench-a{a}r{r}"


def build_fleet(stores: int, keys: int, unrelated: int, account: str = ACCOUNT, region: str = REGION,
                prefix: str = "bench") -> dict[str, Any]:
    from moto.kms.models import kms_backends

    from reconciler.sandbox import backend as rules
    from reconciler.sandbox.settings import current

    settings = current()
    settings.custom_key_store_quota = max(settings.custom_key_store_quota, stores)
    settings.connect_delay_seconds = 0.0
    backend = kms_backends[account][region]
    started = time.monotonic()
    for s in range(stores):
        store = rules.create_custom_key_store(
            backend, custom_key_store_name=store_name(s, prefix), custom_key_store_type="EXTERNAL_KEY_STORE",
            xks_proxy_connectivity="PUBLIC_ENDPOINT", xks_proxy_uri_endpoint=f"https://xks-{s:03d}.bench.example.com",
            xks_proxy_uri_path="/kms/xks/v1", xks_proxy_access_key_id=XKS_ACCESS_KEY_ID,
            xks_proxy_raw_secret_access_key=XKS_SECRET)
        rules.connect_custom_key_store(backend, store.id)
        assert store.connection_state == "CONNECTED", store.connection_state
        for k in range(keys):
            key = rules.create_key_in_custom_key_store(
                backend, custom_key_store_id=store.id, origin="EXTERNAL_KEY_STORE",
                xks_key_id=xks_key_id(s, k, prefix), description=f"bench key {k}",
                tags=[{"TagKey": "team", "TagValue": f"team-{s % 7}"}])
            backend.create_alias(key.id, key_alias(s, k, prefix))
    # keys outside any custom key store, interleaved in creation order with nothing: ListKeys
    # lists in creation order, so they come after the stores' keys (the reader does not care)
    for u in range(unrelated):
        key = backend.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", f"app key {u}", None, False, "AWS_KMS")
        if u % 2 == 0:
            backend.create_alias(key.id, f"alias/app/{u:06d}")
    return {"seconds": round(time.monotonic() - started, 2), "keys": len(backend.keys)}


def build_targets(stores: int, keys: int, unrelated: int, accounts: list[str], regions: list[str]) -> dict[str, Any]:
    """The fleet of ``build_fleet`` in every account and region, and a role per account that the
    emulator's STS lets the runner assume (with ``ROLE_EXTERNAL_ID``)."""
    from reconciler.sandbox.settings import current

    started, total = time.monotonic(), 0
    for a, account in enumerate(accounts):
        current().roles[role_arn(account)] = ROLE_EXTERNAL_ID
        for r, region in enumerate(regions):
            total += build_fleet(stores, keys, unrelated, account, region, target_prefix(a, r))["keys"]
    return {"seconds": round(time.monotonic() - started, 2), "keys": total}


def inventory() -> dict[str, Any]:
    from moto.kms.models import kms_backends

    from reconciler.sandbox import backend as rules

    backend = kms_backends[ACCOUNT][REGION]
    stores = list(rules.custom_key_stores(backend).values())
    names: dict[str, int] = {}
    for store in stores:
        names[store.name] = names.get(store.name, 0) + 1
    keys: dict[str, int] = {}
    xks: dict[tuple[str, str], int] = {}
    for key in backend.keys.values():
        store_id = getattr(key, "custom_key_store_id", None)
        if store_id:
            keys[store_id] = keys.get(store_id, 0) + 1
            ident = (store_id, getattr(key, "xks_key_id", None) or key.id)
            xks[ident] = xks.get(ident, 0) + 1
    return {"stores": len(stores), "duplicate_stores": sum(n - 1 for n in names.values()),
            "store_keys": sum(keys.values()), "duplicate_keys": sum(n - 1 for n in xks.values()),
            "keys": len(backend.keys), "aliases": sum(len(k.aliases) for k in backend.keys.values())}


class BenchApp:
    def __init__(self, app: Callable) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/_bench/"):
            return self.app(environ, start_response)
        from reconciler.sandbox import responses
        from reconciler.sandbox.settings import current

        length = int(environ.get("CONTENT_LENGTH") or 0)
        payload = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
        verb = path[len("/_bench/"):]
        result: dict[str, Any] = {}
        if verb == "stats":
            with _TARGET_LOCK:
                targets = {target: dict(calls) for target, calls in TARGET_CALLS.items()}
            result = {**responses.call_stats.snapshot(), "quota_throttled": dict(QUOTA_REFUSALS),
                      "target_calls": targets, "cpu": time.process_time()}
        elif verb == "reset":
            responses.call_stats.reset()
            responses.quota_buckets.reset()
            QUOTA_REFUSALS.clear()
            with _TARGET_LOCK:
                TARGET_CALLS.clear()
        elif verb == "faults":
            settings = current()
            faults = settings.faults
            faults.latency_ms = float(payload.get("latency_ms", faults.latency_ms))
            faults.quotas_enabled = bool(payload.get("quotas_enabled", faults.quotas_enabled))
            faults.quota_overrides = dict(payload.get("quota_overrides", faults.quota_overrides))
            faults.throttle_rate = float(payload.get("throttle_rate", faults.throttle_rate))
            for name in ("connect_delay_seconds", "disconnect_delay_seconds"):
                setattr(settings, name, float(payload.get(name, getattr(settings, name))))
            settings.custom_key_store_quota = int(payload.get("custom_key_store_quota",
                                                              settings.custom_key_store_quota))
            if "seed" in payload:
                settings.rng.seed(int(payload["seed"]))
            responses.quota_buckets.reset()
        elif verb == "advance":
            result = {"now": current().clock.advance(float(payload["seconds"])).isoformat()}
        elif verb == "inventory":
            result = inventory()
        data = json.dumps(result).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


QUOTA_REFUSALS: dict[str, int] = {}  # operation -> requests refused for being over its quota
# ACCOUNT/REGION -> operation -> requests (quotas on: every KMS operation with a quota)
TARGET_CALLS: dict[str, dict[str, int]] = {}
_TARGET_LOCK = threading.Lock()


def count_quota_refusals() -> None:
    """Of the ThrottlingExceptions the emulator sends, count those for going over a quota (they took
    no token from the quota, unlike the ones ``throttle_rate`` injects after the quota let them by)."""
    from reconciler.sandbox import responses

    take = responses.quota_buckets.take

    def counting(account: str, region: str, operation: str, rate: float) -> bool:
        with _TARGET_LOCK:
            calls = TARGET_CALLS.setdefault(f"{account}/{region}", {})
            calls[operation] = calls.get(operation, 0) + 1
        if take(account, region, operation, rate):
            return True
        QUOTA_REFUSALS[operation] = QUOTA_REFUSALS.get(operation, 0) + 1
        return False

    responses.quota_buckets.take = counting  # type: ignore[method-assign]


def index_moto_aliases() -> None:
    """moto answers "does this alias exist" by looking through every key's aliases (twice per
    CreateAlias): at 10,000 keys that is most of a CreateAlias's CPU, a cost of the emulator that KMS
    does not have. An index of alias -> key id, checked against the keys, gives the same answers."""
    from moto.kms.models import KmsBackend

    create, update, delete = KmsBackend.create_alias, KmsBackend.update_alias, KmsBackend.delete_alias

    def index(backend: Any) -> dict[str, str]:
        if "_bench_aliases" not in backend.__dict__:
            backend._bench_aliases = {name: key.id for key in backend.keys.values() for name in key.aliases}
        return backend._bench_aliases

    def alias_exists(self: Any, alias_name: str) -> bool:
        key = self.keys.get(index(self).get(alias_name, ""))
        return key is not None and alias_name in key.aliases

    def create_alias(self: Any, target_key_id: str, alias_name: str) -> Any:
        alias = create(self, target_key_id, alias_name)
        index(self)[alias_name] = self.get_key_id(target_key_id)
        return alias

    def update_alias(self: Any, target_key_id: str, alias_name: str) -> Any:
        alias = update(self, target_key_id, alias_name)
        index(self)[alias_name] = self.get_key_id(target_key_id)
        return alias

    def delete_alias(self: Any, alias_name: str) -> None:
        delete(self, alias_name)
        index(self).pop(alias_name, None)

    KmsBackend.alias_exists = alias_exists  # type: ignore[method-assign]
    KmsBackend.create_alias = create_alias  # type: ignore[method-assign]
    KmsBackend.update_alias = update_alias  # type: ignore[method-assign]
    KmsBackend.delete_alias = delete_alias  # type: ignore[method-assign]


def main(argv: list[str]) -> None:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    from werkzeug.serving import WSGIRequestHandler, make_server

    from reconciler.sandbox.server import make_app

    stores, keys, unrelated = (int(a) for a in argv[:3])
    index_moto_aliases()
    count_quota_refusals()
    app = make_app()  # installs the emulator into moto (and caches moto's per-request lookups)
    if len(argv) >= 5:  # the fleet row: ACCOUNTS REGIONS, comma-separated
        built = build_targets(stores, keys, unrelated, argv[3].split(","), argv[4].split(","))
    else:
        built = build_fleet(stores, keys, unrelated)

    class Handler(WSGIRequestHandler):
        # HTTP/1.1 answers; werkzeug still closes every connection after its response (KMS's endpoint
        # keeps them alive), so each call pays a new TCP connection: see docs/performance.md
        protocol_version = "HTTP/1.1"

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, BenchApp(app), threaded=True, request_handler=Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address, port = server.server_address[:2]
    print(json.dumps({"url": f"http://{address}:{port}", "built": built}), flush=True)
    sys.stdin.read()  # until the benchmark closes our standard input
    server.shutdown()


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main(sys.argv[1:])
