"""install(): idempotent, and effective under moto's server as well as under mock_aws."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import boto3
import pytest
from botocore.config import Config

from reconciler.sandbox.clock import SandboxClock
from reconciler.sandbox.host import MemoryHost, activate_host, host
from reconciler.sandbox.install import install, installed
from reconciler.sandbox.settings import SandboxSettings, activate
from tests.sandbox.helpers import REGION, kms_error, xks_params


def test_install_is_idempotent(sandbox):
    from moto.kms.responses import KmsResponse

    method = KmsResponse.call_action
    install()
    install()
    assert installed() and KmsResponse.call_action is method


class RecordingHost(MemoryHost):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, bool]] = []

    def request(self, operation, mutating):  # type: ignore[override]
        self.requests.append((operation, mutating))
        return super().request(operation, mutating)


def test_every_kms_request_runs_inside_the_host_bracket(kms):
    recording = RecordingHost()
    previous = activate_host(recording)
    try:
        kms.create_custom_key_store(**xks_params("a"))
        kms.describe_custom_key_stores()
        kms.create_key()
        kms.list_keys()
    finally:
        activate_host(previous)
    assert recording.requests == [
        ("CreateCustomKeyStore", True),
        ("DescribeCustomKeyStores", False),
        ("CreateKey", True),
        ("ListKeys", False),
    ]
    assert host() is previous


@pytest.fixture
def moto_server(aws_credentials) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    settings = SandboxSettings(clock=SandboxClock(frozen_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    previous = activate(settings)
    install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host_name, port = server.get_host_and_port()
    try:
        yield f"http://{host_name}:{port}"
    finally:
        server.stop()
        activate(previous)
        from moto.core.base_backend import BackendDict

        BackendDict.reset()


def test_custom_key_store_api_works_under_the_moto_server(moto_server):
    kms = boto3.client(
        "kms",
        region_name=REGION,
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    store_id = kms.create_custom_key_store(**xks_params("served"))["CustomKeyStoreId"]
    assert kms.describe_custom_key_stores()["CustomKeyStores"][0]["CustomKeyStoreId"] == store_id
    with kms_error("CustomKeyStoreNameInUseException"):
        kms.create_custom_key_store(**xks_params("served", endpoint="https://other.example.com"))
    with pytest.raises(kms.exceptions.CustomKeyStoreNotFoundException):
        kms.connect_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0")


def test_an_unsigned_kms_request_to_the_moto_server_is_answered_by_kms(moto_server):
    """moto routes an unsigned request by its body and path, and sent KMS's to S3 (an XML
    answer); a request whose X-Amz-Target names TrentService is KMS's: 403
    MissingAuthenticationTokenException, in JSON."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        moto_server + "/", data=b"{}", method="POST",
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.ListKeys"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 403
    assert info.value.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert json.loads(info.value.read())["__type"] == "MissingAuthenticationTokenException"
