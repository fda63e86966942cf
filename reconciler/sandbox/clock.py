"""The emulator clock.

Every time the emulator reads (connection delays, key deletion dates, the purge of expired keys)
comes from this clock, so tests and the sandbox CLI move time forward instead of sleeping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class SandboxClock:
    """Wall time plus an offset, or a frozen instant plus an offset.

    ``frozen_at`` set: time stands still except through :meth:`advance` (tests).
    ``frozen_at`` None: time flows with the wall clock, shifted by ``offset_seconds``
    (``sandbox serve`` and the embedded sandbox).
    """

    offset_seconds: float = 0.0
    frozen_at: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def now(self) -> datetime:
        base = self.frozen_at if self.frozen_at is not None else utcnow()
        return base + timedelta(seconds=self.offset_seconds)

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        with self._lock:
            self.offset_seconds += seconds
        return self.now()

    def __getstate__(self) -> dict:
        return {"offset_seconds": self.offset_seconds, "frozen_at": self.frozen_at}

    def __setstate__(self, state: dict) -> None:
        self.offset_seconds = state["offset_seconds"]
        self.frozen_at = state["frozen_at"]
        self._lock = threading.Lock()


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# ten years: beyond any KMS waiting period or timeout, and far from datetime's year 9999
MAX_DURATION_SECONDS = 3650 * 86400


def parse_duration(text: str) -> float:
    """Parse ``90s``, ``15m``, ``2h``, ``8d``, ``1w`` or a sum such as ``1d12h`` into seconds."""
    import re

    text = text.strip().lower()
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", text):
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit s, m, h, d or w, e.g. 90s or 8d"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"duration {text!r} is too long: at most {MAX_DURATION_SECONDS // 86400:.0f}d")
    return seconds
