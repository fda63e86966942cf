"""Errors a user can cause, each with its exit code. The CLI prints the message, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path


class UserError(Exception):
    """A problem the user can fix; the message says how."""

    exit_code = 1


class StalePlanError(UserError):
    pass


class RefusedError(UserError):
    pass


def why_not_written(path: str | os.PathLike[str], exc: OSError) -> str:
    """Why ``path`` could not be written, for a message: a parent directory that is a file is named
    (the system's own reason, "File exists" or "Not a directory", names neither), else the
    system's reason."""
    for parent in reversed(Path(path).parents):
        if str(parent) in ("", ".") or parent.is_dir():
            continue
        if parent.exists():
            return f"{parent} is not a directory"
        break
    return exc.strerror or type(exc).__name__
