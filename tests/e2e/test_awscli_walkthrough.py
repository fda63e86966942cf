"""The seed document's walkthrough ("Deleting an external key store"), with the real AWS CLI
against a running `reconciler sandbox serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.helpers import free_port, sandbox_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def served():
    with sandbox_server() as url:
        yield url


def aws(url: str, *args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    config = tmp_path / "aws-config"
    # AWS CLI v1 would otherwise try to download https:// parameter values (the proxy endpoint)
    config.write_text("[default]\ncli_follow_urlparam = false\n")
    env.update(AWS_ACCESS_KEY_ID="sandbox", AWS_SECRET_ACCESS_KEY="sandbox", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_PAGER="")
    return subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", url, "--output", "json", *args],
                          env=env, capture_output=True, text=True, timeout=60)


def reconciler(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True, timeout=60)


def test_delete_an_external_key_store_walkthrough(served, tmp_path):
    created = aws(served, "kms", "create-custom-key-store",
                  "--custom-key-store-name", "ExampleXKS",
                  "--custom-key-store-type", "EXTERNAL_KEY_STORE",
                  "--xks-proxy-connectivity", "PUBLIC_ENDPOINT",
                  "--xks-proxy-uri-endpoint", "https://myproxy.xks.example.com",
                  "--xks-proxy-uri-path", "/kms/xks/v1",
                  "--xks-proxy-authentication-credential",
                  "AccessKeyId=ABCDE23456723EXAMPLE,RawSecretAccessKey=DXjSUawnel2fr6SKC7G25CNxTyWKE5PF9XX6H/u9pSo=",
                  tmp_path=tmp_path)
    assert created.returncode == 0, created.stderr
    store_id = json.loads(created.stdout)["CustomKeyStoreId"]
    assert store_id.startswith("cks-")

    connect = aws(served, "kms", "connect-custom-key-store", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert connect.returncode == 0, connect.stderr
    state = json.loads(aws(served, "kms", "describe-custom-key-stores", "--custom-key-store-id", store_id,
                           tmp_path=tmp_path).stdout)["CustomKeyStores"][0]["ConnectionState"]
    assert state == "CONNECTING"  # ConnectCustomKeyStore only starts connecting
    assert reconciler("sandbox", "advance", "30s", "--endpoint-url", served).returncode == 0
    entry = json.loads(aws(served, "kms", "describe-custom-key-stores", "--custom-key-store-id", store_id,
                           tmp_path=tmp_path).stdout)["CustomKeyStores"][0]
    assert entry["ConnectionState"] == "CONNECTED"
    assert "RawSecretAccessKey" not in json.dumps(entry)

    refused = aws(served, "kms", "delete-custom-key-store", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert refused.returncode != 0
    assert "CustomKeyStoreInvalidStateException" in refused.stderr

    disconnect = aws(served, "kms", "disconnect-custom-key-store", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert disconnect.returncode == 0, disconnect.stderr
    assert reconciler("sandbox", "advance", "30s", "--endpoint-url", served).returncode == 0

    deleted = aws(served, "kms", "delete-custom-key-store", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert deleted.returncode == 0, deleted.stderr

    listing = aws(served, "kms", "describe-custom-key-stores", tmp_path=tmp_path)
    assert listing.returncode == 0
    assert json.loads(listing.stdout) == {"CustomKeyStores": []}

    gone = aws(served, "kms", "describe-custom-key-stores", "--custom-key-store-id", store_id, tmp_path=tmp_path)
    assert gone.returncode != 0
    assert "CustomKeyStoreNotFoundException" in gone.stderr


def test_sandbox_control_against_a_server(served):
    fault = reconciler("sandbox", "fault", "--endpoint-url", served, "--store", "x",
                       "--connection-error", "XKS_PROXY_TIMED_OUT", "--latency-ms", "5")
    assert fault.returncode == 0, fault.stderr
    settings = json.loads(fault.stdout)
    assert settings["faults"]["connectionErrors"] == {"x": "XKS_PROXY_TIMED_OUT"}
    bad = reconciler("sandbox", "fault", "--endpoint-url", served, "--store", "x", "--connection-error", "NOPE")
    assert bad.returncode == 1 and "unknown ConnectionErrorCode" in bad.stderr and "Traceback" not in bad.stderr
    assert reconciler("sandbox", "reset", "--endpoint-url", served).returncode == 0
    status = json.loads(reconciler("sandbox", "status", "--endpoint-url", served).stdout)
    assert status["faults"]["connectionErrors"] == {}


def test_control_without_a_server_is_one_clear_error():
    run = reconciler("sandbox", "advance", "1d", "--endpoint-url", f"http://127.0.0.1:{free_port()}")
    assert run.returncode == 1
    assert "no sandbox server answers" in run.stderr and "Traceback" not in run.stderr
