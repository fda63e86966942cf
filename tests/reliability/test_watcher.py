"""The store watcher (issue 15): one read of every store per poll for all the steps waiting, with the
semantics of each step polling its own store: the wanted state returns the entry, FAILED raises
with its ConnectionErrorCode, a store that disappears, a timeout, an interruption and a read that
fails each end the wait, and a read that started before a step began waiting never settles it.

Time is virtual (the watcher's sleep moves a fake clock), as in the embedded sandbox."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from reconciler.apply.waiters import (
    ConnectionFailed, StoreDisappeared, WaitInterrupted, WaitTimeout)
from reconciler.apply.watcher import StoreWatcher


class Account:
    """Stores whose ConnectionState changes at given times of a virtual clock."""

    def __init__(self) -> None:
        self.t = 0.0
        self.reads = 0
        self.plans: dict[str, list[tuple[float, str, str | None]]] = {}  # name -> [(from t, state, code)]
        self.gone: dict[str, float] = {}  # name -> when it disappears

    def now(self) -> datetime:
        return datetime.fromtimestamp(1_800_000_000 + self.t, timezone.utc)

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def store(self, name: str, *changes: tuple[float, str, str | None]) -> None:
        self.plans[name] = [(0.0, "CONNECTING", None), *changes]

    def read(self) -> list[dict]:
        self.reads += 1
        out = []
        for name, plan in self.plans.items():
            if name in self.gone and self.t >= self.gone[name]:
                continue
            _, state, code = [p for p in plan if p[0] <= self.t][-1]
            out.append({"CustomKeyStoreName": name, "CustomKeyStoreId": f"cks-{name}", "ConnectionState": state,
                        **({"ConnectionErrorCode": code} if code else {})})
        return out


def watcher(account: Account, stopped=lambda: False, read=None) -> StoreWatcher:
    return StoreWatcher(read or account.read, now=account.now, sleep=account.sleep, stopped=stopped)


def wait_all(w: StoreWatcher, names: list[str], **kwargs) -> list:
    """Each name waited for on a chain of its own (as the executor's stores are)."""
    def one(name: str):
        with w.participant():
            try:
                return w.wait(name, {"CONNECTED"}, {"FAILED"}, timeout_seconds=kwargs.get("timeout", 600))
            except Exception as exc:  # noqa: BLE001 - returned for the test to look at
                return exc

    w.expect(len(names))
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = list(pool.map(one, names))
    w.close()
    return results


def test_fifty_stores_cost_the_polls_of_one():
    account = Account()
    names = [f"s{n:02d}" for n in range(50)]
    for n, name in enumerate(names):
        account.store(name, (3.0 + 4.0 * n / 49, "CONNECTED", None))  # connected between 3 s and 7 s
    results = wait_all(watcher(account), names)
    assert [r["CustomKeyStoreName"] for r in results] == names
    assert all(r["ConnectionState"] == "CONNECTED" for r in results)
    # polls at 1, 2.6, 5.16 and 9.26 s (the backoff), whatever the number of stores
    assert account.reads == 4
    assert account.t == pytest.approx(1 + 1.6 + 2.56 + 4.096)


def test_failed_disappeared_and_timed_out_end_their_own_waits_only():
    account = Account()
    account.store("ok", (2.0, "CONNECTED", None))
    account.store("bad", (2.0, "FAILED", "XKS_PROXY_NOT_REACHABLE"))
    account.store("gone")
    account.gone["gone"] = 2.0
    account.store("slow")  # CONNECTING for ever
    ok, bad, gone, slow = wait_all(watcher(account), ["ok", "bad", "gone", "slow"], timeout=30)
    assert ok["ConnectionState"] == "CONNECTED"
    assert isinstance(bad, ConnectionFailed) and bad.code == "XKS_PROXY_NOT_REACHABLE"
    assert isinstance(gone, StoreDisappeared)
    assert isinstance(slow, WaitTimeout) and str(slow) == "still CONNECTING after 30s"
    assert account.t == pytest.approx(30)  # a poll at the deadline, not after the next backoff


def test_a_read_that_fails_fails_every_wait_it_was_for():
    account = Account()
    account.store("a")
    account.store("b")
    error = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeCustomKeyStores")

    def read():
        raise error

    results = wait_all(watcher(account, read=read), ["a", "b"])
    assert results == [error, error]


def test_stop_interrupts_a_wait_with_the_last_state_seen():
    account = Account()
    account.store("a")
    stop = threading.Event()
    w = watcher(account, stopped=stop.is_set)
    seen = []

    def on_poll(state: str, waited: float) -> None:
        seen.append((state, waited))
        stop.set()

    w.expect(1)
    with w.participant(), pytest.raises(WaitInterrupted) as raised:
        w.wait("a", {"CONNECTED"}, set(), timeout_seconds=600, on_poll=on_poll)
    w.close()
    assert raised.value.state == "CONNECTING" and seen == [("CONNECTING", 1.0)]


def test_a_read_started_before_the_wait_never_settles_it():
    """It may show the state from before the step's own Connect or Disconnect."""
    account = Account()
    account.plans["a"] = [(0.0, "DISCONNECTED", None)]
    reading, release = threading.Event(), threading.Event()
    states: list[str] = []

    def read():
        entries = account.read()
        states.append(entries[0]["ConnectionState"])
        if account.reads == 1:
            reading.set()
            release.wait(10)
        return entries

    w = watcher(account, read=read)
    with ThreadPoolExecutor(max_workers=1) as pool:
        asked = pool.submit(w.describe, "a")  # a read starts, and hangs
        assert reading.wait(10)
        # the step disconnects the store... and waits for DISCONNECTED: the read under way, which
        # started before, must not count (here it would show DISCONNECTED, the wanted state)
        release.set()
        entry = w.wait("a", {"DISCONNECTED"}, set(), timeout_seconds=60)
        assert asked.result()["ConnectionState"] == "DISCONNECTED"
    w.close()
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert len(states) == 2  # the wait was settled by a read of its own


def test_steps_asking_at_once_share_one_read():
    account = Account()
    names = [f"s{n}" for n in range(20)]
    for name in names:
        account.plans[name] = [(0.0, "CONNECTED", None)]
    w = watcher(account)

    def ask(name: str):
        with w.participant():
            return w.describe(name)

    w.expect(len(names))
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        entries = list(pool.map(ask, names))
    assert [e["CustomKeyStoreName"] for e in entries] == names
    assert w.describe("nope") is None
    w.close()
    assert account.reads == 2 and account.t == 0  # asking never moves the clock
