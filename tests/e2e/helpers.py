"""End-to-end helpers: run the CLI in a new process per command against an embedded sandbox."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY_ID = "AKIAXKSPROXYEXAMPLE2"  # 20 chars of A-Z2-7
SECRET = "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYxks00="  # 44 base64 chars, never to be printed
PASSWORD = "kmsuser-Pa55word"


def clean_env(*drop: str) -> dict[str, str]:
    """This process's environment without AWS_*, RECONCILER_* and the ``drop`` prefixes, as a new
    user's shell would have it; except the test session's RECONCILER_SANDBOX_ACCEL=off (see
    tests/conftest.py), so that no command leaves a sandbox server behind."""
    keep = "RECONCILER_SANDBOX_ACCEL"
    return {k: v for k, v in os.environ.items() if k == keep or not k.startswith(("AWS_", "RECONCILER_", *drop))}


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


class Cli:
    """``reconciler`` commands sharing one sandbox directory: each in a fresh process
    (``python -m reconciler``, as a user runs it) or, with ``in_process``, through the same entry
    point in this process (click's runner, in the working directory, with the same environment):
    the sandbox keeps its state on disk between commands either way, so most tests need no new
    interpreter per command."""

    def __init__(self, workdir: Path, *, in_process: bool = False) -> None:
        self.workdir = workdir
        self.in_process = in_process
        self.sandbox_dir = workdir / "sandbox"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "RECONCILER_SANDBOX_DIR": str(self.sandbox_dir),
            "XKS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "XKS_SECRET_ACCESS_KEY": SECRET,
            "KMSUSER_PASSWORD": PASSWORD,
            "NO_COLOR": "1",
            "PYTHONWARNINGS": "ignore",
        }
        self.env.pop("GITHUB_STEP_SUMMARY", None)
        self.runs: list[Run] = []

    def __call__(self, *args: str, env: dict | None = None, timeout: float = 120) -> Run:
        full_env = {**self.env, **(env or {})}
        if self.in_process:
            run = self._in_process(list(args), full_env)
        else:
            proc = subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=self.workdir, env=full_env,
                                  capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
            run = Run(proc.returncode, proc.stdout, proc.stderr)
        self.runs.append(run)
        return run

    def _in_process(self, args: list[str], env: dict[str, str]) -> Run:
        from click.testing import CliRunner

        from reconciler.cli import cli

        unset = {name: None for name in os.environ if name not in env}  # exactly this environment
        before = os.getcwd()
        os.chdir(self.workdir)
        try:
            result = CliRunner().invoke(cli, args, prog_name="reconciler", env={**unset, **env},
                                        catch_exceptions=False)
        finally:
            os.chdir(before)
        return Run(result.exit_code, result.stdout, result.stderr)

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def kms(self):
        """A boto3 KMS client on the same sandbox, in this process (for assertions)."""
        return _SandboxClient(self.sandbox_dir)


class _SandboxClient:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __enter__(self):
        import boto3

        from reconciler.sandbox.embedded import EmbeddedSandbox

        self._sandbox = EmbeddedSandbox(self.directory)
        self._sandbox.__enter__()
        return boto3.client("kms", region_name="us-east-1")

    def __exit__(self, *exc):
        self._sandbox.__exit__(*exc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def sandbox_server(directory: Path | None = None):
    """A `reconciler sandbox serve` process on a free local port, serving ``directory`` (default: a
    new temporary one); yields its URL once it answers."""
    import tempfile

    port = free_port()
    env = clean_env()
    scratch = tempfile.TemporaryDirectory(prefix="reconciler-serve-")
    served = str(directory or Path(scratch.name) / "sandbox")
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", str(port),
                             "--sandbox-dir", served], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_reconciler/state", timeout=2) as resp:
                json.loads(resp.read())
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"sandbox serve did not start: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        scratch.cleanup()


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Commands in this process (see :class:`Cli`)."""
    return Cli(tmp_path, in_process=True)


@pytest.fixture
def cli_process(tmp_path: Path) -> Cli:
    """Each command in a fresh process, as a user runs it."""
    return Cli(tmp_path)


def xks_manifest(*, state: str = "present", endpoint: str = "https://xks.example.com", connection: str = "connected",
                 keys: str | None = None, name: str = "payments-xks") -> str:
    keys = keys if keys is not None else """
        - alias: alias/payments-primary
          xksKeyId: ext-key-0001
          description: Payments data key
          tags: {team: payments}
        - alias: alias/payments-secondary
          xksKeyId: ext-key-0002
          description: Payments backup key
    """
    body = f"""\
        apiVersion: reconciler/v1
        kind: KeyStore
        metadata:
          name: {name}
        spec:
          region: us-east-1
          type: EXTERNAL_KEY_STORE
          state: {state}
          connection: {connection}
          xks:
            connectivity: PUBLIC_ENDPOINT
            uriEndpoint: {endpoint}
            uriPath: /kms/xks/v1
            credential:
              accessKeyId: {{fromEnv: XKS_ACCESS_KEY_ID}}
              secretAccessKey: {{fromEnv: XKS_SECRET_ACCESS_KEY}}
          deletion:
            pendingWindowDays: 7
          keys:
    """
    return textwrap.dedent(body) + textwrap.indent(textwrap.dedent(keys).strip("\n"), "    ") + "\n"


def plan_json(run: Run) -> dict:
    return json.loads(run.out)
