"""The apply journal: one JSON object per step event, appended to plans/journal.jsonl.

Each line is flushed and fsynced as it is written, so a run killed at any point leaves a journal
that says what it did up to there. Messages pass through the redactor before they are written.

A run that has a ``run-start`` line and no ``run-end`` line was interrupted (killed, or its machine
went away); :func:`interrupted_run` finds the last such run for the next apply to mention. A kill
in the middle of a write can leave a partial last line: readers skip it, and the next writer
starts on a fresh line.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

DEFAULT_JOURNAL = "plans/journal.jsonl"


class Journal:
    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._fh = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")
            if _ends_mid_line(self.path):
                self._fh.write("\n")  # a killed writer left a partial line: do not glue onto it

    def write(self, event: dict[str, Any]) -> None:
        if self._fh is None:
            return
        line = json.dumps(event, sort_keys=True, default=str)
        with self._lock:
            self._fh.write(line + "\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _ends_mid_line(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell() == 0:
                return False
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:
        return False


def _parse(lines) -> list[dict[str, Any]]:
    events = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a partial line left by a killed writer
        if isinstance(event, dict):
            events.append(event)
    return events


def read_journal(path: str | os.PathLike) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8", errors="replace") as fh:
        return _parse(fh)


def interrupted_run(path: str | os.PathLike, tail_bytes: int = 256 * 1024) -> dict[str, Any] | None:
    """The last run in the journal if it has no ``run-end``: its id, start time and last finished
    step (``lastStep``, e.g. ``ok payments:connect_store``); None when it ended or there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - tail_bytes))
            data = fh.read()
    except OSError:
        return None
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > tail_bytes and lines:
        lines = lines[1:]  # the first line of the tail may be cut
    events = _parse(lines)
    starts = [i for i, e in enumerate(events) if e.get("event") == "run-start"]
    if not starts:
        return None
    run = events[starts[-1]].get("run")
    mine = [e for e in events[starts[-1]:] if e.get("run") == run]
    if any(e.get("event") == "run-end" for e in mine):
        return None
    last_step = None
    for event in mine:
        if event.get("step"):
            last_step = f"{event.get('event')} {event.get('step')}"
    return {"run": run, "time": mine[0].get("time"), "lastStep": last_step}
