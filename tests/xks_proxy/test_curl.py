"""Interoperability with curl's own SigV4 signer: ``curl --aws-sigv4 "aws:amz:REGION:kms-xks-proxy"``.

curl signs ``content-type;host;x-amz-date`` (more than KMS's ``host;x-amz-date``), so these tests
also prove that the proxy verifies whatever SignedHeaders lists. The module is skipped, saying
so, when curl is missing or too old for --aws-sigv4 (7.75).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.sandbox.xks_proxy import CertificateAuthority, ProxyServer, Request, Response
from tests.xks_proxy.helpers import AKID, AKID_2, SECRET, SECRET_64, URI_PATH, metadata


def _curl_signs() -> bool:
    if shutil.which("curl") is None:
        return False
    help_text = subprocess.run(["curl", "--help", "all"], capture_output=True, text=True).stdout
    return "--aws-sigv4" in help_text


pytestmark = pytest.mark.skipif(not _curl_signs(), reason="curl with --aws-sigv4 (7.75 or later) is not installed")

b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731


def curl(url: str, body: Any = None, *, akid: str = AKID, secret: str = SECRET, method: str | None = None,
         extra: tuple[str, ...] = (), config_dir: Path | None = None) -> tuple[int, Any]:
    """Run curl as the specification's Appendix D does; return (HTTP status, JSON body).

    The credential goes in a curl config file (-K), not on the command line.
    """
    assert config_dir is not None
    user = config_dir / "curl-user.conf"
    user.write_text(f'user = "{akid}:{secret}"\n')
    args = ["curl", "-s", "-S", "--max-time", "10", "-K", str(user),
            "--aws-sigv4", "aws:amz:us-east-1:kms-xks-proxy", "-H", "Content-Type: application/json",
            "-w", "\n%{http_code}", *extra]
    if method:
        args += ["-X", method]
    if body is not None:
        args += ["--data-binary", json.dumps(body)]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        return -done.returncode, done.stderr
    text, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(text) if text else None


@pytest.fixture
def seen(http_server: ProxyServer, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The headers of each request the proxy receives."""
    headers: list[dict[str, str]] = []
    handle = http_server.proxy.handle

    def spy(request: Request) -> Response:
        headers.append({k.lower(): v for k, v in request.headers})
        return handle(request)

    monkeypatch.setattr(http_server.proxy, "handle", spy)
    return headers


HEALTH = {"requestMetadata": {"kmsRequestId": "1124f4d6-db54-4af4-ae30-c55a22a8abcd", "kmsOperation": "KmsHealthCheck"}}


def test_health_signed_by_curl(http_server: ProxyServer, seen: list[dict[str, str]], tmp_path: Path) -> None:
    status, body = curl(http_server.base_url + "/health", HEALTH, config_dir=tmp_path)
    assert status == 200, body
    assert body["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
    assert "SignedHeaders=content-type;host;x-amz-date," in seen[-1]["authorization"]
    assert seen[-1]["user-agent"].startswith("curl/")


def test_the_second_credential_with_a_64_character_secret(http_server: ProxyServer, tmp_path: Path) -> None:
    status, _ = curl(http_server.base_url + "/health", HEALTH, akid=AKID_2, secret=SECRET_64, config_dir=tmp_path)
    assert status == 200
    assert http_server.proxy.calls[-1].access_key_id == AKID_2


def test_encrypt_and_decrypt_with_aad_and_the_integrity_value(http_server: ProxyServer, tmp_path: Path) -> None:
    aad = b"project=nile,department=marketing"
    request = {"requestMetadata": metadata("GenerateDataKey"), "plaintext": b64(b"Hello World!"),
               "encryptionAlgorithm": "AES_GCM", "additionalAuthenticatedData": b64(aad),
               "ciphertextDataIntegrityValueAlgorithm": "SHA_256"}
    status, out = curl(http_server.base_url + "/keys/aes-key/encrypt", request, config_dir=tmp_path)
    assert status == 200, out
    assert "ciphertextDataIntegrityValue" in out
    request = {"requestMetadata": metadata("Decrypt"), "encryptionAlgorithm": "AES_GCM",
               "additionalAuthenticatedData": b64(aad),
               **{k: out[k] for k in ("ciphertext", "ciphertextMetadata", "initializationVector", "authenticationTag")}}
    status, back = curl(http_server.base_url + "/keys/aes-key/decrypt", request, config_dir=tmp_path)
    assert status == 200 and base64.b64decode(back["plaintext"]) == b"Hello World!"
    request["additionalAuthenticatedData"] = b64(b"project=nile,department=sales")
    status, error = curl(http_server.base_url + "/keys/aes-key/decrypt", request, config_dir=tmp_path)
    assert (status, error["errorName"]) == (400, "InvalidCiphertextException")


@pytest.mark.parametrize("case, expected", [
    ("wrong secret", (401, "AuthenticationFailedException")),
    ("unknown key", (404, "KeyNotFoundException")),
    ("bad path", (404, "InvalidUriPathException")),
])
def test_what_curl_gets_wrong_gets_the_specified_error(http_server: ProxyServer, tmp_path: Path, case: str,
                                                       expected: tuple[int, str]) -> None:
    url, secret = http_server.base_url + "/keys/no-such-key/metadata", SECRET
    if case == "wrong secret":
        url, secret = http_server.base_url + "/keys/aes-key/metadata", "W" * 43
    elif case == "bad path":
        url = http_server.url + "/kms/xks/v1/keys/aes-key/metadata"
    status, error = curl(url, {"requestMetadata": metadata("DescribeKey")}, secret=secret, config_dir=tmp_path)
    assert (status, error["errorName"]) == expected


def test_get_is_405(http_server: ProxyServer, tmp_path: Path) -> None:
    status, error = curl(http_server.base_url + "/health", method="GET", config_dir=tmp_path)
    assert status == 405 and "POST" in error["errorMessage"]


def test_https_with_the_sandbox_ca(https_server: ProxyServer, ca: CertificateAuthority, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    url = f"https://xks.example.com:{https_server.port}{URI_PATH}/health"
    resolve = ("--resolve", f"xks.example.com:{https_server.port}:127.0.0.1")
    status, body = curl(url, HEALTH, extra=(*resolve, "--cacert", str(ca_file)), config_dir=tmp_path)
    assert status == 200, body
    assert https_server.proxy.calls[-1].access_key_id == AKID
    # without trusting the sandbox CA, curl refuses the certificate (exit 60)
    status, stderr = curl(url, HEALTH, extra=resolve, config_dir=tmp_path)
    assert status == -60, stderr
