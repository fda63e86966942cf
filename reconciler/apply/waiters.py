"""Polling for KMS's asynchronous results (connect, disconnect) with bounded backoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable


class WaitTimeout(Exception):
    pass


class ConnectionFailed(Exception):
    def __init__(self, code: str | None) -> None:
        super().__init__(code or "unknown")
        self.code = code


@dataclass
class Backoff:
    first: float = 1.0
    factor: float = 1.6
    cap: float = 15.0

    def delays(self):
        delay = self.first
        while True:
            yield delay
            delay = min(self.cap, delay * self.factor)


def wait_for_state(describe: Callable[[], dict[str, Any]], *, want: set[str], fail: set[str],
                   now: Callable[[], datetime], sleep: Callable[[float], None], timeout_seconds: float,
                   backoff: Backoff | None = None,
                   on_poll: Callable[[str, float], None] | None = None) -> dict[str, Any]:
    """Poll ``describe()`` (a CustomKeyStoresListEntry) until ConnectionState is in ``want``.

    A state in ``fail`` raises :class:`ConnectionFailed` with the ConnectionErrorCode; running out
    of ``timeout_seconds`` (on the given clock) raises :class:`WaitTimeout`.
    """
    start = now()
    for delay in (backoff or Backoff()).delays():
        entry = describe()
        state = entry.get("ConnectionState")
        if state in want:
            return entry
        if state in fail:
            raise ConnectionFailed(entry.get("ConnectionErrorCode"))
        waited = (now() - start).total_seconds()
        if waited >= timeout_seconds:
            raise WaitTimeout(f"still {state} after {waited:.0f}s")
        if on_poll:
            on_poll(state or "?", waited)
        sleep(min(delay, max(0.01, timeout_seconds - waited)))
    raise AssertionError("unreachable")
