"""Where the emulated account lives, and the bracket around every emulated request.

The wire layer (:mod:`reconciler.sandbox.responses`) runs each KMS request inside
``host().request(operation, mutating)``. The default host keeps state in this process's memory
under one lock (in-process tests, ``sandbox serve``); the embedded sandbox's host
(:mod:`reconciler.sandbox.embedded`) also reloads the state another process saved and saves what
this request changed, so separate CLI processes see one account.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class MemoryHost:
    def __init__(self) -> None:
        self.lock = threading.RLock()

    @contextmanager
    def request(self, operation: str, mutating: bool) -> Iterator[None]:
        with self.lock:
            yield


_host: MemoryHost = MemoryHost()


def host() -> MemoryHost:
    return _host


def activate_host(new: MemoryHost) -> MemoryHost:
    global _host
    previous, _host = _host, new
    return previous
