"""The package's layout holds: the import-linter contracts in pyproject.toml are kept, they fail
when a command imports another command or the sandbox imports the product, and no module grows
past a size a reader takes in at once (ARCHITECTURE.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "reconciler"
MAX_LINES = 600


def lint_imports(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command; "
                           "lint_imports_command()", "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_contracts_are_kept():
    run = lint_imports(ROOT, ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize("module, violation, contract", [
    ("commands/show.py", "from reconciler.commands import plan as _other  # noqa\n", "No command imports another"),
    ("sandbox/clock.py", "import reconciler.plan.model  # noqa\n", "The sandbox (the emulator) imports nothing"),
    ("aws/regions.py", "import reconciler.plan.model  # noqa\n", "Layers"),
])
def test_a_violation_breaks_its_contract(tmp_path: Path, module: str, violation: str, contract: str):
    copy = tmp_path / "src"
    shutil.copytree(PACKAGE, copy / "reconciler", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "reconciler" / module
    target.write_text(violation + target.read_text())
    run = lint_imports(copy, copy)
    assert run.returncode != 0, run.stdout
    broken = run.stdout.split("Broken contracts")[-1]
    assert contract in broken, run.stdout


def test_no_module_is_longer_than_a_reader_takes_in():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
