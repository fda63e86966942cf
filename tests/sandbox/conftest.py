"""Fixtures of the emulator tests (tests/conftest.py has the in-process ones)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.sandbox.served import serve


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Any]]:
    """The emulator served over HTTP in this process: (its URL, its settings), for a module."""
    with serve() as (url, settings):
        yield url, settings
