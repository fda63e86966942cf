"""The apply journal: one JSON object per step event, appended to plans/journal.jsonl.

Each line is flushed and fsynced before its write returns, so a run killed at any point leaves a
journal that says what it did up to there; the stores' workers writing at the same moment share
one fsync (a group commit) instead of queueing for one each. Messages pass through the redactor
before they are written.

A run that has a ``run-start`` line and no ``run-end`` line was interrupted (killed, or its machine
went away); :func:`interrupted_run` finds the last such run for the next apply to mention. A kill
in the middle of a write can leave a partial last line: readers skip it, and the next writer
starts on a fresh line.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Any, Callable

from reconciler.errors import UserError

DEFAULT_JOURNAL = "plans/journal.jsonl"


def _warn(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)


class Journal:
    """The journal file, opened (and checked) before an apply's first step.

    It is an aid, not a precondition of the apply: a journal that cannot be opened refuses the
    run before anything changes (:class:`UserError`, exit 1, with the fix); a write that fails
    later (a full disk) is one warning, after which the run carries on without it.
    """

    def __init__(self, path: str | os.PathLike | None, *, warn: Callable[[str], None] = _warn) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()  # the file and the line count
        self._sync_lock = threading.Lock()  # one fsync at a time
        self._written = 0  # lines flushed
        self._synced = 0  # lines known to be on disk
        self._fh = None
        self._warn = warn
        if self.path is not None:
            self._fh = _open_for_append(self.path)

    def write(self, event: dict[str, Any]) -> None:
        if self._fh is None:
            return
        line = json.dumps(event, sort_keys=True, default=str)
        with self._lock:
            if self._fh is None:
                return
            try:
                self._fh.write(line + "\n")
                self._fh.flush()
            except OSError as exc:
                self._give_up(exc)
                return
            self._written += 1
            mine = self._written
        self._sync(mine)

    def _sync(self, line: int) -> None:
        """Return once line number ``line`` is on disk: whoever fsyncs, fsyncs every line flushed so far."""
        with self._sync_lock:
            if self._synced >= line:
                return  # another writer's fsync covered it
            with self._lock:
                fh, upto = self._fh, self._written
            if fh is None:
                return
            try:
                os.fsync(fh.fileno())
            except (OSError, ValueError) as exc:  # ValueError: closed meanwhile by a failed write
                with self._lock:
                    if self._fh is fh and isinstance(exc, OSError):
                        self._give_up(exc)
                return
            self._synced = upto

    def _give_up(self, exc: OSError) -> None:
        self._warn(f"cannot write the journal {self.path} ({exc.strerror or exc}); the apply carries on "
                   "without it (its progress is still printed)")
        try:
            self._fh.close()  # type: ignore[union-attr]
        except OSError:
            pass
        self._fh = None

    def close(self) -> None:
        with self._sync_lock, self._lock:
            if self._fh is not None:
                try:
                    self._fh.close()
                except OSError as exc:
                    self._give_up(exc)
                self._fh = None


_FIX = "pass --journal FILE with a writable file path, or --no-journal"


def check_journal_path(path: str | os.PathLike | None) -> None:
    """Refuse, before anything happens, a journal path that cannot be a journal file (a
    directory, a device, a pipe, a path under a file); :class:`Journal` opens it later."""
    if not path:
        return
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise UserError(f"--journal {path}: {exc.strerror}; {_FIX}") from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise UserError(f"--journal {path} is {what}; {_FIX}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"--journal {path}: {parent} is not a directory; {_FIX}")
            break


def _open_for_append(path: Path):
    fix = _FIX
    check_journal_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot open the journal {path} ({exc.strerror or exc}); {fix}") from None
    try:
        if _ends_mid_line(path):
            fh.write("\n")  # a killed writer left a partial line: do not glue onto it
            fh.flush()
    except OSError as exc:
        fh.close()
        raise UserError(f"cannot write the journal {path} ({exc.strerror or exc}); {fix}") from None
    return fh


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
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None  # a device or a pipe has no previous run (and may never end)
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - tail_bytes))
            data = fh.read(tail_bytes)
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
