"""Day-2 test helpers: the CLI in this process (click's runner) against an embedded sandbox.

In-process runs are fast (no interpreter start per command) and let a test record the AWS calls
the commands make. ``Sandbox.kms()`` opens a boto3 KMS client on the same sandbox, for building
"hand-made" stores the way a user would have, and for assertions.
"""

from __future__ import annotations

import os
import re
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from click.testing import CliRunner

from tests.e2e.helpers import ACCESS_KEY_ID, PASSWORD, SECRET
from tests.e2e.helpers import Run as Result

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


class Sandbox:
    """One embedded sandbox directory and a working directory; commands run in-process."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.directory = workdir / ".reconciler" / "sandbox"
        self.env = {
            "RECONCILER_SANDBOX_DIR": str(self.directory),
            "XKS_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "XKS_SECRET_ACCESS_KEY": SECRET,
            "KMSUSER_PASSWORD": PASSWORD,
            "NO_COLOR": "1",
        }

    def run(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        from reconciler.cli import cli

        runner = CliRunner()
        old = Path.cwd()
        os.chdir(self.workdir)
        try:
            result = runner.invoke(cli, list(args), env={**self.env, **(env or {})}, catch_exceptions=False)
        finally:
            os.chdir(old)
        return Result(result.exit_code, result.stdout, result.stderr)

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    @contextmanager
    def kms(self) -> Iterator[Any]:
        """A boto3 KMS client on this sandbox (and the sandbox, as ``client.sandbox``)."""
        import boto3

        from reconciler.sandbox.embedded import EmbeddedSandbox

        sandbox = EmbeddedSandbox(self.directory)
        with sandbox:
            client = boto3.client("kms", region_name=REGION)
            client.sandbox = sandbox
            yield client

    def seed_cluster(self, cluster_id: str | None = None, trust_anchor: str | None = None) -> str:
        from reconciler.sandbox.control import ClusterSeed, EmbeddedControl

        return EmbeddedControl(str(self.directory)).seed_cluster(
            ClusterSeed(cluster_id=cluster_id, trust_anchor_pem=trust_anchor)).id

    def seed_endpoint_service(self, name: str | None = None, dns: str | None = None) -> str:
        from reconciler.sandbox.control import EmbeddedControl, EndpointServiceSeed

        return EmbeddedControl(str(self.directory)).seed_endpoint_service(
            EndpointServiceSeed(service_name=name, private_dns_name=dns)).id

    def fault(self, **change: Any) -> None:
        from reconciler.sandbox.control import EmbeddedControl, FaultChange

        EmbeddedControl(str(self.directory)).set_faults(FaultChange(**change))

    def advance(self, seconds: float) -> None:
        from reconciler.sandbox.control import EmbeddedControl

        EmbeddedControl(str(self.directory)).advance(seconds)


def connect(kms: Any, store_id: str) -> str:
    """Connect a store by hand and wait (moving the sandbox clock) until it settles."""
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    for _ in range(50):
        state = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]["ConnectionState"]
        if state != "CONNECTING":
            return state
        kms.sandbox.advance(5)
    raise AssertionError("the store did not settle")


def env_names(text: str) -> list[str]:
    return re.findall(r"fromEnv: ([A-Z0-9_]+)", text)


def sourced(env_file: Path) -> dict[str, str]:
    """What '. FILE' sets, for the env file `sandbox init` writes."""
    from reconciler.sandbox.fixtures import read_env_file

    return read_env_file(env_file)
