"""The proxy's error table: every errorName of the XKS Proxy API specification and its HTTP status.

A proxy error travels as a JSON body ``{"errorName": ..., "errorMessage": ...}`` with the status
the table fixes. :class:`XksError` is how the request handling signals one.
"""

from __future__ import annotations

import re

ERROR_STATUS: dict[str, int] = {
    "ValidationException": 400,
    "InvalidStateException": 400,
    "InvalidCiphertextException": 400,
    "InvalidKeyUsageException": 400,
    "AuthenticationFailedException": 401,
    "AccessDeniedException": 403,
    "KeyNotFoundException": 404,
    "InvalidUriPathException": 404,
    "ThrottlingException": 429,
    "InternalException": 500,
    "UnsupportedOperationException": 501,
    "DependencyTimeoutException": 503,
}

ERROR_NAMES = tuple(ERROR_STATUS)

# The specification: an errorMessage is shorter than 512 characters of printable ASCII.
_MAX_MESSAGE = 511
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def check_error_name(name: str) -> str:
    """Return ``name`` if it is in the table, else raise ValueError naming the choices."""
    if name not in ERROR_STATUS:
        raise ValueError(f"unknown errorName {name!r}; use one of {', '.join(ERROR_NAMES)}")
    return name


def clean_message(message: str) -> str:
    """``message`` as the specification allows it: printable ASCII, under 512 characters."""
    text = _NOT_PRINTABLE.sub("?", message)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class XksError(Exception):
    """A proxy error: ``error_name`` from the table, and a message safe to send (no secrets)."""

    def __init__(self, error_name: str, message: str) -> None:
        check_error_name(error_name)
        super().__init__(f"{error_name}: {message}")
        self.error_name = error_name
        self.message = clean_message(message)

    @property
    def status(self) -> int:
        return ERROR_STATUS[self.error_name]

    def body(self) -> dict[str, str]:
        return {"errorName": self.error_name, "errorMessage": self.message}
