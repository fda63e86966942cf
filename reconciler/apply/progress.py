"""Apply progress: a line per step as it starts and ends, a live indicator while waiting on a TTY,
or one JSON object per event (``--format json``). Every event also goes to the journal."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime, timezone
from typing import Any, Callable, TextIO

from reconciler.apply.journal import Journal
from reconciler.display import printable


class Progress:
    def __init__(self, *, fmt: str = "text", stream: TextIO | None = None, journal: Journal | None = None,
                 run_id: str = "", redact: Callable[[str], str] = lambda s: s,
                 now: Callable[[], datetime] | None = None) -> None:
        self.fmt = fmt
        self.stream = stream or sys.stdout
        self.journal = journal
        self.run_id = run_id
        self.redact = redact
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.tty = fmt == "text" and hasattr(self.stream, "isatty") and self.stream.isatty()
        self._lock = threading.Lock()
        self._status = None
        if self.tty:
            from rich.console import Console

            self._console = Console(file=self.stream)

    def __call__(self, event: dict[str, Any]) -> None:
        event = {k: (self.redact(v) if isinstance(v, str) else v) for k, v in event.items()}
        stamped = {"time": self.now().isoformat().replace("+00:00", "Z"), "run": self.run_id, **event}
        if self.journal is not None and event.get("event") != "wait":
            self.journal.write(stamped)  # outside the lock: concurrent steps share the journal's fsyncs
        with self._lock:
            if self.fmt == "json":
                self.stream.write(json.dumps(stamped, sort_keys=True, default=str) + "\n")
                self.stream.flush()
                return
            self._text(event)

    def _text(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        step = event.get("step", "")
        if kind == "wait":
            text = printable(f"  … {step}: {event.get('state')} ({event.get('waited', 0):.0f}s)")
            if self.tty:
                if self._status is None:
                    self._status = self._console.status(text)
                    self._status.start()
                else:
                    self._status.update(text)
            else:
                self.stream.write(text + "\n")
            return
        if self._status is not None:
            self._status.stop()
            self._status = None
        if kind == "run-start":
            line = f"Applying {event.get('steps')} step(s) in {event.get('region')}:"
        elif kind == "run-end":
            return
        elif kind == "start":
            line = f"- {step}: started"
        elif kind == "ok":
            line = f"✓ {step}: {event.get('message', '')} ({event.get('elapsed', 0):.1f}s)"
        elif kind == "failed":
            line = f"✗ {step}: FAILED: {event.get('message', '')}"
        elif kind == "skipped":
            line = f"⊘ {step}: {event.get('message', '')}"
        elif kind == "deferred":
            line = f"⏸ {step}: {event.get('message', '')}"
        else:
            line = f"{kind}: {event.get('message', '')}"
        self.stream.write(printable(line) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
