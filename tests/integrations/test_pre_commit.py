"""The pre-commit hook (.pre-commit-hooks.yaml), run by pre-commit itself on a scratch repository:
a commit of a bad manifest fails with FILE:LINE:COL; a good one passes; other files are not checked.

pre-commit normally clones the hook's repository and installs it into an environment of its own
(language: python), which needs the network. The test runs the hook exactly as published (entry,
files, types, serial) from a `repo: local` configuration with `language: system`, so that it uses
the reconciler installed here: what is tested is the hook's definition and pre-commit's handling
of it, offline and in about a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BAD = """\
apiVersion: reconciler/v1
kind: KeyStore
metadata:
  name: payments-xks
spec:
  type: EXTERNAL_KEY_STORE
  xks:
    connectivity: PUBLIC_ENDPOINT
    uriEndpoint: http://xks.example.com
    uriPath: /kms/xks/v1
    credential:
      accessKeyId: {fromEnv: XKS_ACCESS_KEY_ID}
      secretAccessKey: {fromEnv: XKS_SECRET_ACCESS_KEY}
"""


def _scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "reconciler-validate")
    assert hook["language"] == "python" and hook["entry"] == "reconciler validate"
    local = {**hook, "language": "system"}
    local.pop("minimum_pre_commit_version", None)
    repo = tmp_path / "infra"
    (repo / "manifests").mkdir(parents=True)
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump({"repos": [{"repo": "local", "hooks": [local]}]}))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PRE_COMMIT_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path), "NO_COLOR": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    git = shutil.which("git")
    subprocess.run([git, "init", "-q", "-b", "main"], cwd=repo, check=True, env=env)
    subprocess.run([sys.executable, "-m", "pre_commit", "install"], cwd=repo, check=True, env=env, capture_output=True)
    return repo, env


def _commit(repo: Path, env: dict[str, str], *files: str) -> subprocess.CompletedProcess:
    subprocess.run(["git", "add", *files], cwd=repo, check=True, env=env)
    return subprocess.run(["git", "commit", "-q", "-m", "change"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_commit_of_a_bad_manifest_fails_with_file_line_col(tmp_path: Path):
    repo, env = _scratch(tmp_path)
    (repo / "manifests" / "payments.yaml").write_text(BAD)
    (repo / "notes.yaml").write_text("not: a manifest\n")  # outside manifests/: not checked
    run = _commit(repo, env, ".pre-commit-config.yaml", "manifests/payments.yaml", "notes.yaml")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "reconciler validate" in out and "Failed" in out
    assert "manifests/payments.yaml:9:18: spec.xks.uriEndpoint: must start with https://" in out
    assert "notes.yaml" not in out.replace("manifests/payments.yaml", "")

    # fixed, the commit goes through
    (repo / "manifests" / "payments.yaml").write_text(BAD.replace("http://", "https://"))
    run = _commit(repo, env, "manifests/payments.yaml")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "reconciler validate" in run.stdout + run.stderr  # it ran (and Passed)


def test_a_commit_of_the_repository_configuration_is_checked_as_one(tmp_path: Path):
    """manifests/reconciler.yaml matches the hook's files pattern: it is validated as the repository
    configuration (not refused as a manifest without apiVersion), and a bad one fails the commit."""
    repo, env = _scratch(tmp_path)
    (repo / "manifests" / "payments.yaml").write_text(BAD.replace("http://", "https://"))
    (repo / "manifests" / "reconciler.yaml").write_text('defaultRegion: eu-west-1\naccounts:\n  "111122223333": {profile: prod}\n')
    run = _commit(repo, env, ".pre-commit-config.yaml", "manifests/payments.yaml", "manifests/reconciler.yaml")
    assert run.returncode == 0, run.stdout + run.stderr

    (repo / "manifests" / "reconciler.yaml").write_text('defaultRegion: eu-west-1\naccounts:\n  "1111": {profile: prod}\n')
    run = _commit(repo, env, "manifests/reconciler.yaml")
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "manifests/reconciler.yaml:3:3: accounts.1111: the key must be a 12-digit account id" in out
