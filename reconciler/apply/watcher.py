"""One store-state watcher per apply: every store's state from one DescribeCustomKeyStores chain.

KMS connects and disconnects custom key stores asynchronously, and DescribeCustomKeyStores, the
only way to see how that is going, has a quota of 5 requests per second per account and region.
One chain of that call (pages of 1000) lists every store, so instead of each waiting step polling
for its own store, every step that needs a store's state asks the watcher:

* :meth:`StoreWatcher.describe` (a store's entry, as fresh as a read started after the request):
  the requests that arrive while a read is under way share the next read;
* :meth:`StoreWatcher.wait` (until the store's ConnectionState is wanted, or in ``fail``): the
  watcher polls on a backoff (:class:`~reconciler.apply.waiters.Backoff`: 1 s, then 1.6 times
  longer each time, at most 15 s), reset to its first delay whenever a new step starts waiting, and
  wakes each waiter when a read shows its store settled. 50 stores connecting at once cost the
  polls of one, not 50 times as many.

Semantics are those of polling one store: a read started before a step began waiting never
settles it (it may show the state before the step's own Connect or Disconnect); a state in
``fail`` raises :class:`ConnectionFailed` with the ConnectionErrorCode; a store missing from a read
raises :class:`StoreDisappeared`; no wanted state after ``timeout_seconds`` (on the given clock, a
poll is made at the deadline) raises :class:`WaitTimeout`; ``stopped()`` turning true raises
:class:`WaitInterrupted` (checked every quarter of a second of real time, and never by taking a
lock from a signal handler); a read that fails raises its error in every step it was for.

The watcher's thread runs only while a step waits or asks. With ``sleep=None`` it waits between
polls in real time, and a new waiter wakes it early. Otherwise (the embedded sandbox, the tests)
``sleep`` advances the emulator clock, and time is virtual: the watcher is the one thread that moves
it while stores connect, and it does so only when every store's chain of steps
(:meth:`participant`) is blocked in the watcher, waiting or asking, as a discrete-event simulation
does; a read for :meth:`describe` also waits for that moment. So what the steps see, and how many
reads they cost, depends on the emulator clock and the plan, never on how fast threads run.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator

from reconciler.apply.waiters import (
    Backoff, ConnectionFailed, StoreDisappeared, WaitInterrupted, WaitTimeout)

CHECK_STOP_SECONDS = 0.25  # how often (real time) a waiting step looks at stopped()


@dataclass(eq=False)
class _Waiter:
    name: str
    want: set[str]
    fail: set[str]
    start: float
    deadline: float
    ticket: int  # reads numbered above this one started after the wait began
    state: str = "?"
    thread: int = 0
    polls: list[tuple[str, float]] = field(default_factory=list)  # (state, waited) not yet reported
    outcome: tuple[str, Any] | None = None

    @property
    def blocked(self) -> bool:
        return self.outcome is None and not self.polls


class StoreWatcher:
    def __init__(self, read_stores: Callable[[], list[dict]], *, now: Callable[[], datetime],
                 sleep: Callable[[float], None] | None, stopped: Callable[[], bool],
                 backoff: Backoff | None = None) -> None:
        """``read_stores()``: every CustomKeyStoresListEntry (the paged chain, rate-limited and
        retried by the caller). ``sleep``: how to wait between polls (None: real time)."""
        self._read_stores = read_stores
        self._now = now
        self._sleep = sleep
        self._stopped = stopped
        self._backoff = backoff or Backoff()
        self._cond = threading.Condition()
        self._waiters: set[_Waiter] = set()
        self._fresh_wanted = False  # a describe() arrived since the last read started
        self._interval = self._backoff.first
        self._next_poll: float | None = None
        self._started = 0  # reads started
        self._done = 0  # the number of the last read published
        self._last: dict[str, dict] | BaseException = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        # virtual time: the chains of steps, which must all be blocked here before time moves
        self._unstarted = 0
        self._participants: set[int] = set()
        self._askers: dict[int, int] = {}  # thread -> its ticket, while it waits for a read
        self.reads = 0  # reads made (each one DescribeCustomKeyStores chain)

    def _clock(self) -> float:
        return self._now().timestamp()

    # -- the chains of steps (virtual time) -------------------------------------------------
    def expect(self, chains: int) -> None:
        """``chains`` chains of steps are about to start: time does not move until each has
        started and is blocked here (or has ended)."""
        with self._cond:
            self._unstarted += chains

    @contextmanager
    def participant(self) -> Iterator[None]:
        """Around one chain of steps, in the thread that runs it."""
        me = threading.get_ident()
        with self._cond:
            self._unstarted = max(0, self._unstarted - 1)
            self._participants.add(me)
        try:
            yield
        finally:
            with self._cond:
                self._participants.discard(me)
                self._cond.notify_all()

    def _quiet(self) -> bool:
        """(under the lock) Every chain blocked here, waiting or asking: time may move (a no-op
        in real time, where it moves anyway)."""
        if self._sleep is None:
            return True
        if self._unstarted:
            return False
        blocked = {w.thread for w in self._waiters if w.blocked}
        blocked.update(t for t, ticket in self._askers.items() if self._done <= ticket)
        return self._participants <= blocked

    # -- asking -----------------------------------------------------------------------------
    def describe(self, name: str) -> dict | None:
        """The store's entry from a read that started after this call (None: no such store)."""
        me = threading.get_ident()
        with self._cond:
            if self._closed:
                raise RuntimeError("the store watcher is closed")
            ticket = self._started
            self._askers[me] = ticket
            self._fresh_wanted = True
            self._wake()
            try:
                while self._done <= ticket:
                    self._cond.wait(CHECK_STOP_SECONDS)
                last = self._last
            finally:
                del self._askers[me]
        if isinstance(last, BaseException):
            raise last
        return last.get(name)

    def wait(self, name: str, want: set[str], fail: set[str], *, timeout_seconds: float,
             on_poll: Callable[[str, float], None] | None = None) -> dict:
        """Until a read shows the store in ``want``: its entry. ``on_poll(state, waited)`` is
        called (in the caller's thread) for each read that shows it still in another state."""
        start = self._clock()
        with self._cond:
            if self._closed:
                raise RuntimeError("the store watcher is closed")
            waiter = _Waiter(name, set(want), set(fail), start, start + timeout_seconds, self._started,
                             thread=threading.get_ident())
            self._waiters.add(waiter)
            self._interval = self._backoff.first  # a new waiter: poll soon again
            due = start + self._backoff.first
            self._next_poll = due if self._next_poll is None else min(self._next_poll, due)
            self._wake()
        try:
            while True:
                with self._cond:
                    self._cond.notify_all()  # blocked again: the watcher may be waiting for that
                    while not waiter.polls and waiter.outcome is None and not self._stopped():
                        self._cond.wait(CHECK_STOP_SECONDS)
                    polls, waiter.polls = waiter.polls, []
                    outcome = waiter.outcome
                for state, waited in polls:
                    if on_poll is not None:
                        on_poll(state, waited)
                if outcome is not None:
                    return self._conclude(waiter, outcome)
                if self._stopped():
                    raise WaitInterrupted(waiter.state)
        finally:
            with self._cond:
                self._waiters.discard(waiter)

    @staticmethod
    def _conclude(waiter: _Waiter, outcome: tuple[str, Any]) -> dict:
        kind, value = outcome
        if kind == "ok":
            return value
        if kind == "failed":
            raise ConnectionFailed(value)
        if kind == "timeout":
            raise WaitTimeout(value)
        if kind == "gone":
            raise StoreDisappeared(waiter.name)
        raise value  # the read's error

    def close(self) -> None:
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- the polling thread -----------------------------------------------------------------
    def _wake(self) -> None:
        """(under the lock) Start the polling thread, or have it look at its schedule again."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="store-watcher", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    def _due(self, now: float) -> float | None:
        """(under the lock) When the next read is due; None: nothing to read for."""
        if self._fresh_wanted:
            return now
        pending = [w for w in self._waiters if w.outcome is None]
        if not pending:
            return None
        return min([self._next_poll if self._next_poll is not None else now] + [w.deadline for w in pending])

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = self._clock()
                    due = None if self._closed else self._due(now)
                    if due is None:
                        self._thread = None
                        self._next_poll = None
                        return
                    if not self._quiet():
                        self._cond.wait(CHECK_STOP_SECONDS)  # a chain blocking here notifies
                        continue
                    if due <= now:
                        break
                    if self._sleep is None:
                        self._cond.wait(due - now)
                    else:  # virtual time: moving the clock is instant; no lock held meanwhile
                        self._cond.release()
                        try:
                            self._sleep(due - now)
                        finally:
                            self._cond.acquire()
                self._fresh_wanted = False
                self._started += 1
                number, started = self._started, now
                if any(w.outcome is None for w in self._waiters):
                    self._interval = min(self._backoff.cap, self._interval * self._backoff.factor)
                    self._next_poll = started + self._interval
            try:
                result: dict[str, dict] | BaseException = {e.get("CustomKeyStoreName"): e for e in self._read_stores()}
            except Exception as exc:  # noqa: BLE001 - handed to every step the read was for
                result = exc
            self.reads += 1
            with self._cond:
                self._done, self._last = number, result
                for waiter in self._waiters:
                    if waiter.ticket < number and waiter.outcome is None:
                        self._settle(waiter, result, started)
                self._cond.notify_all()

    @staticmethod
    def _settle(waiter: _Waiter, result: dict[str, dict] | BaseException, started: float) -> None:
        if isinstance(result, BaseException):
            waiter.outcome = ("error", result)
            return
        entry = result.get(waiter.name)
        if entry is None:
            waiter.outcome = ("gone", None)
            return
        state = entry.get("ConnectionState") or "?"
        waiter.state = state
        waited = started - waiter.start
        if state in waiter.want:
            waiter.outcome = ("ok", entry)
        elif state in waiter.fail:
            waiter.outcome = ("failed", entry.get("ConnectionErrorCode"))
        elif waited >= waiter.deadline - waiter.start:
            waiter.outcome = ("timeout", f"still {state} after {waited:.0f}s")
        else:
            waiter.polls.append((state, waited))
