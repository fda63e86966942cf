"""Where the emulated account lives, and the bracket around every emulated request.

The wire layer (:mod:`reconciler.sandbox.responses`) runs each KMS request inside
``host().request(operation, mutating)``, and the control verbs (advance, fault, seed...) run
inside ``host().transaction()``. The default host keeps state in this process's memory under one
lock (in-process tests, the benchmark's server); the embedded sandbox's host
(:mod:`reconciler.sandbox.embedded`, used by ``--sandbox`` and by ``sandbox serve``) also reloads
the state another process saved and saves what this request changed, so separate processes see
one account.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator


class MemoryHost:
    def __init__(self) -> None:
        self.lock = threading.RLock()

    @contextmanager
    def request(self, operation: str, mutating: bool) -> Iterator[None]:
        with self.lock:
            yield

    @contextmanager
    def transaction(self, save: bool = True) -> Iterator[Any]:
        """The active settings, to read or change along with the backends."""
        from reconciler.sandbox import settings

        with self.lock:
            yield settings.current()

    def reset(self) -> None:
        """An empty account and default settings."""
        from moto.core.models import BackendDict

        from reconciler.sandbox import settings

        with self.lock:
            BackendDict.reset()
            settings.activate(settings.SandboxSettings())


_host: MemoryHost = MemoryHost()


def host() -> MemoryHost:
    return _host


def activate_host(new: MemoryHost) -> MemoryHost:
    global _host
    previous, _host = _host, new
    return previous
