"""Fixtures of the emulator tests (tests/conftest.py has the in-process ones).

``kms`` and ``raw_kms`` extend the root fixtures: every response the emulator sends them, success
or error, is checked against the KMS API model (tests/sandbox/model_check.py) as it arrives, so
every test of this package also checks the wire format of what it exercises.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from tests.sandbox.model_check import response_problems
from tests.sandbox.served import serve


def check_every_response(client: Any) -> Any:
    def check(http_response: Any, model: Any, **_: Any) -> None:
        problems = response_problems(model.name, http_response.status_code, http_response.headers, http_response.content)
        assert not problems, f"{model.name}: {problems}"

    client.meta.events.register("after-call.kms", check)
    return client


@pytest.fixture
def kms(kms: Any) -> Any:
    return check_every_response(kms)


@pytest.fixture
def raw_kms(raw_kms: Any) -> Any:
    return check_every_response(raw_kms)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Any]]:
    """The emulator served over HTTP in this process: (its URL, its settings), for a module."""
    with serve() as (url, settings):
        yield url, settings
