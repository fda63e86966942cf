"""In-process harness for the reliability tests: a fresh emulator (frozen clock) per example,
manifests written from small specs, and plan + apply through the product's own modules.

A :class:`World` is one emulated account: ``plan()`` loads the manifests, reads the live state
through the reader and runs the planner exactly as ``reconciler plan`` does; ``apply()`` runs the
executor exactly as ``reconciler apply`` does, with a :class:`Connection` whose ``sleep`` moves
the emulator clock (as the embedded sandbox's does), so waiting for a connection costs no time.
"""

from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import boto3
from botocore.config import Config

from reconciler.apply.executor import ApplyResult, Executor, ExecutorOptions, Redactor
from reconciler.aws.connection import Connection
from reconciler.live.reader import ReadOptions, read_live
from reconciler.plan.build import Desired, build_desired
from reconciler.plan.model import Plan
from reconciler.aws.ratelimit import RateLimiter
from reconciler.sandbox.clock import SandboxClock
from reconciler.sandbox.host import MemoryHost, activate_host
from reconciler.sandbox.settings import SandboxSettings, activate

ACCOUNT = "123456789012"
REGION = "us-east-1"
FROZEN_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
ACCESS_KEY_ID = "ABCDEFGHIJKLMNOPQRST2345"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
PASSWORD = "kmsuser-pass"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
       "XKS_SECRET_ACCESS_KEY": SECRET, "KMSUSER_PASSWORD": PASSWORD}

_session: boto3.Session | None = None


def session() -> boto3.Session:
    """One boto3 session for every example (it caches the loaded service models)."""
    global _session
    if _session is None:
        _session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return _session


_test_client: Any = None


def test_client() -> Any:
    """The tests' own KMS client (retries off), shared by every example: it keeps no emulator
    state, and creating a client costs more than most examples' API calls."""
    global _test_client
    if _test_client is None:
        _test_client = session().client("kms", region_name=REGION,
                                        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    return _test_client


def property_examples(default: int = 200) -> int:
    """Examples per property test: RECONCILER_PROPERTY_EXAMPLES, default 200 (what CI runs)."""
    return int(os.environ.get("RECONCILER_PROPERTY_EXAMPLES", default))


@dataclass
class World:
    settings: SandboxSettings
    root: Path
    kms: Any  # retries off: for setting up live state and for assertions
    events: list[dict] = field(default_factory=list)
    _connection: Connection | None = None

    @property
    def clock(self) -> SandboxClock:
        return self.settings.clock

    def connection(self) -> Connection:
        """The product's connection; one per example, so its plans and applies share its clients
        (their adaptive retries keep state, which must not leak into the next example)."""
        if self._connection is None:
            self._connection = Connection(session=session(), region=REGION, now=self.clock.now,
                                          sleep=self.clock.advance)
        return self._connection

    # -- manifests ------------------------------------------------------------------------
    def write(self, name: str, text: str) -> Path:
        path = self.root / "manifests" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def clear_manifests(self) -> None:
        folder = self.root / "manifests"
        if folder.exists():
            for path in folder.iterdir():
                path.unlink()

    def desired(self) -> Desired:
        from reconciler.plan.make import load_manifests

        paths = [str(self.root / "manifests")]
        loaded = load_manifests(paths, default_region=REGION)
        return build_desired(loaded, REGION, paths)

    # -- plan / apply ---------------------------------------------------------------------
    def read(self, conn: Connection | None = None):
        conn = conn or self.connection()
        return read_live(conn.kms, REGION, options=ReadOptions(workers=4, limiter=RateLimiter(enabled=False)),
                         now=conn.now)

    def plan(self, desired: Desired | None = None, conn: Connection | None = None) -> tuple[Plan, Desired]:
        plan, desired, _ = self.plan_and_live(desired, conn)
        return plan, desired

    def plan_and_live(self, desired: Desired | None = None, conn: Connection | None = None):
        """(plan, desired, the live state it was made from)"""
        from reconciler.plan.make import build_plan

        desired = desired or self.desired()
        conn = conn or self.connection()
        live = self.read(conn)
        return build_plan(desired, live, conn.now(), [str(self.root / "manifests")]), desired, live

    def apply(self, plan: Plan, desired: Desired, conn: Connection | None = None,
              create_attempts: int = 6) -> ApplyResult:
        from reconciler.apply.guards import check_plan_invariants

        check_plan_invariants(plan, desired)
        conn = conn or self.connection()
        executor = Executor(conn, plan, desired.inputs, emit=self.events.append, redactor=Redactor(),
                            options=ExecutorOptions(limiter=RateLimiter(enabled=False), timeout_seconds=600,
                                                    create_attempts=create_attempts))
        return executor.run()

    def converge(self, max_runs: int = 1) -> list[ApplyResult]:
        """plan + apply, up to ``max_runs`` times while the plan has steps that are not deferred."""
        results = []
        for _ in range(max_runs):
            plan, desired = self.plan()
            if not runnable(plan, self.clock.now()):
                break
            results.append(self.apply(plan, desired))
        return results

    # -- observing ------------------------------------------------------------------------
    @contextmanager
    def calm(self) -> Iterator[None]:
        """No injected faults while the test itself looks (the product's calls keep them)."""
        from reconciler.sandbox.settings import Faults

        faults, self.settings.faults = self.settings.faults, Faults(
            connection_errors=self.settings.faults.connection_errors,
            proxy_errors=self.settings.faults.proxy_errors)
        try:
            yield
        finally:
            self.settings.faults = faults

    def stores(self) -> list[dict]:
        with self.calm():
            return self.kms.describe_custom_key_stores()["CustomKeyStores"]

    def keys(self) -> list[dict]:
        out = []
        with self.calm():
            for entry in self.kms.list_keys(Limit=1000)["Keys"]:
                meta = self.kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]
                if meta.get("CustomKeyStoreId"):
                    out.append(meta)
        return out


def runnable(plan: Plan, now: datetime) -> list:
    """The plan's steps that are not deferred to a later date."""
    return [s for s in plan.steps if s.deferred_until is None or s.deferred_until <= now]


@contextmanager
def world(root: Path, *, seed: int = 0) -> Iterator[World]:
    """A fresh emulated account (nothing from an earlier example survives) with a frozen clock."""
    from moto import mock_aws

    from reconciler.sandbox import responses
    from reconciler.sandbox.install import install

    saved_env = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    settings = SandboxSettings(clock=SandboxClock(frozen_at=FROZEN_AT), seed=seed)
    previous = activate(settings)
    previous_host = activate_host(MemoryHost())
    install()
    responses.call_stats.reset()
    responses.quota_buckets.reset()
    try:
        with mock_aws():
            yield World(settings=settings, root=root, kms=test_client())
    finally:
        activate_host(previous_host)
        activate(previous)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- manifests ----------------------------------------------------------------------------------

def xks_doc(name: str, *, state: str = "present", connection: str = "connected",
            endpoint: str | None = None, path: str = "/kms/xks/v1", window: int = 7,
            keys: list[dict] | None = None) -> str:
    """A manifest document for an XKS store; keys: dicts with ident, alias, enabled, description, tags."""
    endpoint = endpoint or f"https://{name}.example.com"
    lines = [
        "apiVersion: reconciler/v1",
        "kind: KeyStore",
        f"metadata: {{name: {name}}}",
        "spec:",
        f"  region: {REGION}",
        "  type: EXTERNAL_KEY_STORE",
        f"  state: {state}",
        f"  connection: {connection}",
        "  xks:",
        "    connectivity: PUBLIC_ENDPOINT",
        f"    uriEndpoint: {endpoint}",
        f"    uriPath: {path}",
        "    credential:",
        f"      accessKeyId: {ACCESS_KEY_ID}",
        "      secretAccessKey: {fromEnv: XKS_SECRET_ACCESS_KEY}",
        f"  deletion: {{pendingWindowDays: {window}}}",
    ]
    lines += _key_lines(keys or [], xks=True)
    return "\n".join(lines) + "\n"


def hsm_doc(name: str, cluster_id: str, anchor_file: str, *, state: str = "present", connection: str = "connected",
            window: int = 7, keys: list[dict] | None = None) -> str:
    lines = [
        "apiVersion: reconciler/v1",
        "kind: KeyStore",
        f"metadata: {{name: {name}}}",
        "spec:",
        f"  region: {REGION}",
        "  type: AWS_CLOUDHSM",
        f"  state: {state}",
        f"  connection: {connection}",
        "  cloudHsm:",
        f"    clusterId: {cluster_id}",
        f"    trustAnchorCertificate: {{fromFile: {anchor_file}}}",
        "    keyStorePassword: {fromEnv: KMSUSER_PASSWORD}",
        f"  deletion: {{pendingWindowDays: {window}}}",
    ]
    lines += _key_lines(keys or [], xks=False)
    return "\n".join(lines) + "\n"


def _key_lines(keys: list[dict], *, xks: bool) -> list[str]:
    if not keys:
        return ["  keys: []"]
    out = ["  keys:"]
    for key in keys:
        first = True
        fields = []
        if key.get("alias"):
            fields.append(f"alias: {key['alias']}")
        if xks:
            fields.append(f"xksKeyId: {key['xksKeyId']}")
        fields.append(f"enabled: {'true' if key.get('enabled', True) else 'false'}")
        if key.get("description"):
            fields.append(f"description: {key['description']}")
        if key.get("tags"):
            tags = ", ".join(f"{k}: {v}" for k, v in sorted(key["tags"].items()))
            fields.append(f"tags: {{{tags}}}")
        for item in fields:
            out.append(("    - " if first else "      ") + item)
            first = False
    return out
