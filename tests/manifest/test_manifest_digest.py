"""digest(): the same desired state gives the same hash, whatever the layout; any change changes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.manifest import canonical_manifest, digest, load

REPO = Path(__file__).resolve().parents[2]

A = """\
apiVersion: reconciler/v1
kind: KeyStore
metadata: {name: a}
spec:
  region: us-east-1
  type: EXTERNAL_KEY_STORE
  xks:
    connectivity: PUBLIC_ENDPOINT
    uriEndpoint: https://a.example.com
    uriPath: /kms/xks/v1
    credential:
      accessKeyId: {fromEnv: A_ID}
      secretAccessKey: {fromEnv: A_SECRET}
  keys:
    - {xksKeyId: k1, alias: alias/a1, tags: {team: x, env: prod}}
    - {xksKeyId: k2}
"""

B = """\
apiVersion: reconciler/v1
kind: KeyStore
metadata: {name: b}
spec:
  type: AWS_CLOUDHSM
  cloudHsm:
    clusterId: cluster-jxhlf7644ne
    trustAnchorCertificate: {fromFile: ca.crt}
    keyStorePassword: {fromEnv: B_PASS}
  keys: [{alias: alias/b}]
"""


def digest_of(tmp_path: Path, files: dict[str, str], default_region: str | None = "us-east-1") -> str:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    result = load([tmp_path], default_region=default_region)
    assert result.ok, [str(p) for p in result.problems]
    assert result.digest() == digest(result.manifests)
    return result.digest()


def test_digest_is_a_sha256_hex(tmp_path: Path) -> None:
    value = digest_of(tmp_path, {"a.yaml": A})
    assert len(value) == 64 and int(value, 16) >= 0


def test_digest_ignores_file_layout_document_order_key_order_and_formatting(tmp_path: Path) -> None:
    base = digest_of(tmp_path / "1", {"a.yaml": A, "b.yaml": B})
    assert digest_of(tmp_path / "2", {"z.yaml": A, "sub/a.yaml": B}) == base
    assert digest_of(tmp_path / "3", {"all.yaml": B + "---\n" + A}) == base
    reordered = A.replace("    - {xksKeyId: k1, alias: alias/a1, tags: {team: x, env: prod}}\n    - {xksKeyId: k2}\n",
                          "    - {xksKeyId: k2, enabled: true, description: ''}\n"
                          "    - alias: alias/a1\n      tags: {env: prod, team: x}\n      xksKeyId: k1\n")
    assert digest_of(tmp_path / "4", {"a.yaml": "# comment\n" + reordered, "b.yaml": B}) == base


@pytest.mark.parametrize(("old", "new"), [
    ("name: a", "name: a2"),
    ("uriPath: /kms/xks/v1", "uriPath: /p/kms/xks/v1"),
    ("team: x", "team: y"),
    ("{fromEnv: A_SECRET}", "{fromEnv: A_SECRET2}"),
    ("{fromEnv: A_ID}", "AKIA234567ABCDEFGHIJ"),
    ("region: us-east-1", "region: us-east-2"),
    ("type: EXTERNAL_KEY_STORE", "type: EXTERNAL_KEY_STORE\n  connection: disconnected"),
    ("- {xksKeyId: k2}", "- {xksKeyId: k2, enabled: false}"),
])
def test_any_change_changes_the_digest(tmp_path: Path, old: str, new: str) -> None:
    assert old in A
    assert digest_of(tmp_path / "1", {"a.yaml": A}) != digest_of(tmp_path / "2", {"a.yaml": A.replace(old, new)})


def test_default_region_is_part_of_the_desired_state(tmp_path: Path) -> None:
    assert digest_of(tmp_path, {"b.yaml": B}, "us-east-1") != digest_of(tmp_path, {"b.yaml": B}, "eu-west-1")


def test_secret_values_never_enter_the_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A_SECRET", "first-value")
    first = digest_of(tmp_path, {"a.yaml": A})
    monkeypatch.setenv("A_SECRET", "second-value")
    assert digest_of(tmp_path, {"a.yaml": A}) == first
    canonical = canonical_manifest(load([tmp_path]).manifests[0])
    assert canonical["manifest"]["spec"]["xks"]["credential"]["secretAccessKey"] == {"fromEnv": "A_SECRET"}


def test_digest_is_stable_across_processes(tmp_path: Path) -> None:
    expected = digest_of(tmp_path, {"a.yaml": A, "b.yaml": B})
    code = ("import sys; from reconciler.manifest import load; "
            "print(load([sys.argv[1]], default_region='us-east-1').digest())")
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(REPO))
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True,
                             check=True)
        assert out.stdout.strip() == expected


def test_digest_of_nothing_is_defined() -> None:
    assert digest([]) == digest([])
