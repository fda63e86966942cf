"""The emulator stands on its own: it imports nothing from the product.

``reconciler.sandbox`` could be offered to moto as it is: its modules import only each other,
moto, botocore and the standard library - and ``reconciler.kms_quotas``, the module of KMS's
default request quotas that the product's rate limiter reads too (it imports nothing itself).
"""

from __future__ import annotations

import ast
from pathlib import Path

import reconciler.kms_quotas

SANDBOX = Path(__file__).resolve().parents[2] / "reconciler" / "sandbox"
SHARED = {"reconciler.kms_quotas"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_sandbox_imports_only_itself_and_the_shared_quota_table():
    outside = {
        f"{path.name}: {name}"
        for path in sorted(SANDBOX.glob("*.py"))
        for name in _imports(path)
        if name.split(".")[0] == "reconciler" and not name.startswith("reconciler.sandbox") and name not in SHARED
    }
    assert outside == set()


def test_the_shared_quota_table_imports_nothing_from_reconciler():
    path = Path(reconciler.kms_quotas.__file__)
    assert {name for name in _imports(path) if name.startswith("reconciler")} == set()
