"""What a running proxy can be told to do differently: EKM fleet health, latency, injected errors.

The emulator and tests change these at runtime through :class:`Controls` (``proxy.controls``);
every method is thread-safe, and a change applies to the next request.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, replace
from typing import Literal, Optional, get_args

from reconciler.sandbox.xks_proxy.config import HealthStatus, ProxyConfig
from reconciler.sandbox.xks_proxy.errors import check_error_name

CallKind = Literal["health", "metadata", "encrypt", "decrypt"]
CALL_KINDS: tuple[str, ...] = get_args(CallKind)
HEALTH_STATUSES: tuple[str, ...] = get_args(HealthStatus)


def check_kind(kind: Optional[str]) -> Optional[str]:
    if kind is not None and kind not in CALL_KINDS:
        raise ValueError(f"unknown call kind {kind!r}; use one of {', '.join(CALL_KINDS)}")
    return kind


@dataclass(frozen=True)
class InjectedError:
    """Answer matching calls with ``error_name``: calls of ``kind`` (None: every kind) for
    ``key_id`` (None: any key, and health), the next ``remaining`` times (None: until cleared)."""

    id: int
    error_name: str
    kind: Optional[str] = None
    key_id: Optional[str] = None
    remaining: Optional[int] = None
    message: str = "error injected by the sandbox"

    def matches(self, kind: str, key_id: Optional[str]) -> bool:
        if self.kind is not None and self.kind != kind:
            return False
        return self.key_id is None or self.key_id == key_id


@dataclass(frozen=True)
class FleetMember:
    id: str
    model: str
    health_status: str


class Controls:
    def __init__(self, config: ProxyConfig) -> None:
        self._lock = threading.Lock()
        self._fleet = [FleetMember(m.id, m.model, m.health_status) for m in config.ekm.fleet]
        self._latency_ms = {kind: getattr(config.latency_ms, kind) for kind in CALL_KINDS}
        self._errors: list[InjectedError] = []
        self._ids = itertools.count(1)

    # EKM fleet health ------------------------------------------------------------------------

    def fleet(self) -> list[FleetMember]:
        with self._lock:
            return list(self._fleet)

    def set_health(self, status: str, member_id: Optional[str] = None) -> None:
        """Set the health of one fleet member, or of every member when ``member_id`` is None."""
        if status not in HEALTH_STATUSES:
            raise ValueError(f"unknown health status {status!r}; use one of {', '.join(HEALTH_STATUSES)}")
        with self._lock:
            if member_id is not None and member_id not in {m.id for m in self._fleet}:
                raise ValueError(f"no EKM fleet member {member_id!r}; the fleet is "
                                 f"{', '.join(m.id for m in self._fleet)}")
            self._fleet = [replace(m, health_status=status) if member_id in (None, m.id) else m
                           for m in self._fleet]

    def all_unavailable(self) -> bool:
        with self._lock:
            return all(m.health_status == "UNAVAILABLE" for m in self._fleet)

    # Latency ---------------------------------------------------------------------------------

    def latency_ms(self, kind: str) -> int:
        with self._lock:
            return self._latency_ms[kind]

    def set_latency(self, milliseconds: int, kind: Optional[str] = None) -> None:
        """Add ``milliseconds`` to every call of ``kind`` (None: of every kind)."""
        check_kind(kind)
        if not 0 <= milliseconds <= 60_000:
            raise ValueError("latency is 0 to 60000 milliseconds")
        with self._lock:
            for name in CALL_KINDS if kind is None else (kind,):
                self._latency_ms[name] = int(milliseconds)

    # Injected errors -------------------------------------------------------------------------

    def inject_error(self, error_name: str, *, kind: Optional[str] = None, key_id: Optional[str] = None,
                     count: Optional[int] = None, message: Optional[str] = None) -> InjectedError:
        """Answer matching calls with ``error_name``; the latest injection that matches wins."""
        check_error_name(error_name)
        check_kind(kind)
        if count is not None and count < 1:
            raise ValueError("count is a positive number of calls, or None for every call")
        with self._lock:
            injected = InjectedError(next(self._ids), error_name, kind, key_id, count,
                                     message or "error injected by the sandbox")
            self._errors.append(injected)
            return injected

    def clear_errors(self, injected: Optional[InjectedError] = None) -> None:
        """Remove one injection, or all of them."""
        with self._lock:
            self._errors = [e for e in self._errors if injected is not None and e.id != injected.id]

    def injected_errors(self) -> list[InjectedError]:
        with self._lock:
            return list(self._errors)

    def take_error(self, kind: str, key_id: Optional[str]) -> Optional[InjectedError]:
        """The injection that answers this call, counting it down; None if none matches."""
        with self._lock:
            for index in range(len(self._errors) - 1, -1, -1):
                found = self._errors[index]
                if not found.matches(kind, key_id):
                    continue
                if found.remaining is not None:
                    if found.remaining <= 1:
                        del self._errors[index]
                    else:
                        self._errors[index] = replace(found, remaining=found.remaining - 1)
                return found
            return None
