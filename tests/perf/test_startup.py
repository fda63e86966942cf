"""Start-up stays light: a command imports only what it uses (see docs/performance.md). Each case
runs in a new interpreter and lists the heavy libraries the command left imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.day2.helpers import REPO

HEAVY = {"boto3", "botocore", "moto", "pydantic", "yaml", "rich", "werkzeug", "cryptography"}

PROBE = """
import json, sys
sys.argv = ["reconciler", *sys.argv[1:]]
from reconciler.cli import main
try:
    main()
except SystemExit:
    pass
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(HEAVY)))
print("HEAVY=" + json.dumps(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args,allowed", [
    (["--help"], set()),
    (["--version"], set()),
    (["plan", "--help"], set()),
    (["sandbox", "--help"], set()),
    (["validate", "manifests"], {"pydantic", "yaml"}),  # the manifest models, nothing that connects
    (["schema"], {"pydantic", "yaml"}),
], ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_command_imports_only_what_it_needs(args, allowed):
    probe = PROBE.replace("json.loads(HEAVY)", json.dumps(sorted(HEAVY)))
    run = subprocess.run([sys.executable, "-c", probe, *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    heavy = json.loads(run.stderr.rsplit("HEAVY=", 1)[1])
    assert set(heavy) <= allowed, f"reconciler {' '.join(args)} imported {heavy}"
