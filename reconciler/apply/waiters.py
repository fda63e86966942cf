"""What waiting for KMS's asynchronous results (connect, disconnect) can end in, and its backoff.

The waiting itself is :class:`reconciler.apply.watcher.StoreWatcher`: one per apply, polling every
store at once.
"""

from __future__ import annotations

from dataclasses import dataclass


class WaitTimeout(Exception):
    pass


class ConnectionFailed(Exception):
    def __init__(self, code: str | None) -> None:
        super().__init__(code or "unknown")
        self.code = code


class StoreDisappeared(Exception):
    """The store was not among the stores KMS listed while a step waited for it."""


class WaitInterrupted(Exception):
    """``stop()`` was called while a step waited; ``state`` is the store's last known state."""

    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


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
