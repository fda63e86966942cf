"""Errors a user can cause, each with its exit code. The CLI prints the message, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says how."""

    exit_code = 1


class StalePlanError(UserError):
    pass


class RefusedError(UserError):
    pass
