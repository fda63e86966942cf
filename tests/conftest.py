"""Shared fixtures: the in-process KMS sandbox (moto + the custom key store emulator).

``sandbox``   fresh SandboxSettings with a FROZEN clock (2026-01-01T00:00:00Z), install()ed,
              inside moto.mock_aws(); yields the settings; drive time with
              ``sandbox.clock.advance(seconds)``.
``kms``       a boto3 KMS client (us-east-1) inside that sandbox. Retries are OFF
              (total_max_attempts=1) so injected faults reach the test as they happen.
``xks_store`` factory: creates an external key store (PUBLIC_ENDPOINT by default, or VPC with
              ``connectivity="VPC_ENDPOINT_SERVICE"``), optionally connected; returns its id.
``hsm_store`` factory: creates a CloudHSM cluster and a CloudHSM key store; returns
              (store id, cluster id).
"""

from __future__ import annotations

import itertools
import os
import tempfile
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.config import Config

from reconciler.sandbox.clock import SandboxClock
from reconciler.sandbox.host import MemoryHost, activate_host
from reconciler.sandbox.settings import SandboxSettings, activate

# The many CLI processes the tests start run as a user's would, with Python's bytecode cache: when
# PYTHONDONTWRITEBYTECODE keeps the checkout clean (as .ci/run does), their cache goes to a
# directory outside it instead of being switched off (compiling every module at each start would
# cost each process a quarter of a second).
if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
    os.environ.setdefault("PYTHONPYCACHEPREFIX", os.path.join(tempfile.gettempdir(),
                                                              f"reconciler-tests-pycache-{os.getuid()}"))

# The CLI processes the tests start run each command themselves: no sandbox server left behind
# (tests/e2e/test_accel.py starts its own and stops it)
os.environ["RECONCILER_SANDBOX_ACCEL"] = "off"

# The emulator gives an XKS proxy KMS's 250 ms per call, on the wall clock: with the suite's two
# workers on two cores a healthy local proxy (TLS handshake included) now and then took longer, and a
# connect that should succeed failed. Tests of the limit itself set it back to 250 ms.
os.environ["RECONCILER_SANDBOX_XKS_TIMEOUT_MS"] = "2000"

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
FROZEN_AT = datetime(2026, 1, 1, tzinfo=timezone.utc)

# XksProxyAuthenticationCredentialType: AccessKeyId 20-30 of [A-Z2-7]; RawSecretAccessKey
# 43-64 of [a-zA-Z0-9/+=]
XKS_ACCESS_KEY_ID = "ABCDEFGHIJKLMNOPQRST2345"
XKS_SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
KEY_STORE_PASSWORD = "kmsuser-pass"


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)


@pytest.fixture
def sandbox(aws_credentials: None) -> Iterator[SandboxSettings]:
    from moto import mock_aws

    from reconciler.sandbox import responses
    from reconciler.sandbox.install import install

    settings = SandboxSettings(clock=SandboxClock(frozen_at=FROZEN_AT))
    previous = activate(settings)
    previous_host = activate_host(MemoryHost())
    install()
    responses.call_stats.reset()
    responses.quota_buckets.reset()
    try:
        with mock_aws():
            yield settings
    finally:
        activate_host(previous_host)
        activate(previous)


_session: boto3.session.Session | None = None


def make_client(service: str = "kms", region: str = REGION, **config: Any) -> Any:
    """A boto3 client in the sandbox's region, retries off unless ``config`` says otherwise.

    One boto3 session is shared by the tests (it caches the loaded service models); the
    credentials are the dummy ones of ``aws_credentials``.
    """
    global _session
    if _session is None:
        _session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
    options: dict[str, Any] = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
    options.update(config)
    return _session.client(service, region_name=region, config=Config(**options))


@pytest.fixture
def kms(sandbox: SandboxSettings) -> Any:
    return make_client("kms")


@pytest.fixture
def raw_kms(sandbox: SandboxSettings) -> Any:
    """A KMS client without botocore's client-side parameter validation, so the emulator's own
    (server-side) ValidationException can be observed."""
    return make_client("kms", parameter_validation=False)


def connect_and_wait(kms: Any, sandbox: SandboxSettings, store_id: str) -> str:
    """ConnectCustomKeyStore, advance the clock past the connect delay, return the state."""
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    sandbox.clock.advance(sandbox.connect_delay_seconds)
    return store_state(kms, store_id)


def store_state(kms: Any, store_id: str) -> str:
    entry = kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
    return entry["ConnectionState"]


@pytest.fixture
def xks_store(kms: Any, sandbox: SandboxSettings) -> Callable[..., str]:
    counter = itertools.count(1)

    def create(
        name: str | None = None,
        *,
        connectivity: str = "PUBLIC_ENDPOINT",
        connect: bool = False,
        uri_endpoint: str | None = None,
        uri_path: str = "/kms/xks/v1",
        vpc_service: Any = None,
    ) -> str:
        n = next(counter)
        name = name or f"xks-store-{n}"
        params: dict[str, Any] = {
            "CustomKeyStoreName": name,
            "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
            "XksProxyConnectivity": connectivity,
            "XksProxyUriPath": uri_path,
            "XksProxyAuthenticationCredential": {
                "AccessKeyId": XKS_ACCESS_KEY_ID,
                "RawSecretAccessKey": XKS_SECRET,
            },
        }
        if connectivity == "VPC_ENDPOINT_SERVICE":
            from reconciler.sandbox.seed import create_vpc_endpoint_service

            vpc_service = vpc_service or create_vpc_endpoint_service(ACCOUNT_ID, REGION)
            params["XksProxyVpcEndpointServiceName"] = vpc_service.service_name
            params["XksProxyUriEndpoint"] = uri_endpoint or vpc_service.uri_endpoint
        else:
            params["XksProxyUriEndpoint"] = uri_endpoint or f"https://xks-proxy-{n}.example.com"
        store_id = kms.create_custom_key_store(**params)["CustomKeyStoreId"]
        if connect:
            assert connect_and_wait(kms, sandbox, store_id) == "CONNECTED"
        return store_id

    return create


@pytest.fixture
def hsm_store(kms: Any, sandbox: SandboxSettings) -> Callable[..., tuple[str, str]]:
    from reconciler.sandbox.seed import create_cloudhsm_cluster, trust_anchor

    counter = itertools.count(1)

    def create(name: str | None = None, *, connect: bool = False, hsm_count: int = 2) -> tuple[str, str]:
        n = next(counter)
        cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION, hsm_count=hsm_count)
        store_id = kms.create_custom_key_store(
            CustomKeyStoreName=name or f"hsm-store-{n}",
            CloudHsmClusterId=cluster_id,
            TrustAnchorCertificate=trust_anchor(ACCOUNT_ID, REGION, cluster_id),
            KeyStorePassword=KEY_STORE_PASSWORD,
        )["CustomKeyStoreId"]
        if connect:
            assert connect_and_wait(kms, sandbox, store_id) == "CONNECTED"
        return store_id, cluster_id

    return create
