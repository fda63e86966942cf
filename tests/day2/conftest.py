from __future__ import annotations

from pathlib import Path

import pytest

from tests.day2.helpers import Sandbox


@pytest.fixture
def sb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    for name in list(__import__("os").environ):
        if name.startswith("AWS_") or name == "GITHUB_STEP_SUMMARY":
            monkeypatch.delenv(name, raising=False)
    return Sandbox(tmp_path)
