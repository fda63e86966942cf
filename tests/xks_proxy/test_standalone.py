"""The proxy package stands alone: it imports no other part of reconciler, nor boto or moto."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import reconciler.sandbox.xks_proxy as package

PACKAGE_DIR = Path(package.__file__).parent


def test_its_modules_import_only_the_sandbox() -> None:
    outside = []
    for module in sorted(PACKAGE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            outside += [f"{module.name}: {n}" for n in names
                        if n.split(".")[0] == "reconciler" and not n.startswith("reconciler.sandbox.")]
    assert outside == []


def test_importing_it_loads_no_other_reconciler_module_and_no_aws_sdk() -> None:
    code = ("import sys, json, reconciler.sandbox.xks_proxy; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('reconciler', 'boto3', 'botocore', 'moto'))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert [m for m in loaded if not m.startswith("reconciler.sandbox.xks_proxy")] == [
        "reconciler", "reconciler.sandbox"]

