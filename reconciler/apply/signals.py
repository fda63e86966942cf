"""SIGINT and SIGTERM during an apply: finish the steps in flight, start no other, release the lock.

A second signal is not caught (the default action stops the process at once).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator

from reconciler.errors import RefusedError


class Stop:
    """What SIGINT/SIGTERM asked of an apply: stop the executor gracefully (the steps in flight
    finish, no other starts). The handler never raises: an exception raised by a signal handler
    can land in code that cannot propagate it (a finalizer, a callback) and be swallowed, and the
    apply would go on as if nothing had happened. Before the executor exists, the request is
    remembered and :meth:`check` refuses to start any step."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self.executor: Any = None

    def request(self, name: str) -> None:
        self.signal = name
        if self.executor is not None:
            self.executor.stop()

    def attach(self, executor: Any) -> None:
        self.executor = executor
        if self.signal is not None:
            executor.stop()

    def check(self) -> None:
        if self.signal is not None:
            raise RefusedError(f"apply was interrupted ({self.signal}) before any step started; nothing was changed")


@contextmanager
def signals_stop(stop: Stop, enabled: bool) -> Iterator[None]:
    """While the body runs, SIGINT/SIGTERM stop the apply gracefully (a second one is not caught)."""
    import signal
    import threading

    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum, _frame) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
        name = signal.Signals(signum).name
        doing = "finishing the steps in flight, starting no other" if stop.executor is not None else \
            "starting no step"
        print(f"\nReceived {name}: {doing} (send it again to stop at once).", file=sys.stderr, flush=True)
        stop.request(name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
