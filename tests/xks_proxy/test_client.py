"""The signed client: typed results, and a typed failure for each way a call can go wrong."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from reconciler.sandbox.xks_proxy import ProxyServer, XksClient
from reconciler.sandbox.xks_proxy.client import (ConnectionRefused, Encrypted, HttpError, MalformedResponse,
                                                 NameNotResolved, Timeout)
from tests.xks_proxy.helpers import AKID, AKID_2, SECRET, SECRET_64, URI_PATH


def test_the_four_calls(http_server: ProxyServer) -> None:
    c = XksClient(http_server.base_url, AKID_2, SECRET_64)
    health = c.health()
    assert health.ok and health.status == 200 and health.elapsed_ms > 0
    assert [m.health_status for m in health.value.fleet] == ["ACTIVE", "ACTIVE"]
    assert health.value.ekm_vendor == "Test EKM vendor" and health.value.fleet_size == 1
    meta = c.metadata("rsa-key").value
    assert (meta.key_spec, meta.key_usage, meta.key_status) == ("RSA_2048", ("ENCRYPT", "DECRYPT"), "ENABLED")
    encrypted = c.encrypt("aes-key", b"secret data key", b"context").value
    assert encrypted.integrity_value is not None and encrypted.ciphertext_metadata
    assert c.decrypt("aes-key", encrypted, b"context").value.plaintext == b"secret data key"
    assert http_server.proxy.calls[-1].kms_operation == "Decrypt"
    assert "secret data key" not in repr(c.decrypt("aes-key", encrypted, b"context"))


def test_an_error_of_the_proxy_is_an_http_error(http_server: ProxyServer) -> None:
    result = XksClient(http_server.base_url, AKID, SECRET).metadata("nope")
    assert isinstance(result.failure, HttpError) and not result.ok and result.value is None
    assert (result.status, result.failure.status, result.failure.error_name) == (404, 404, "KeyNotFoundException")
    wrong = XksClient(http_server.base_url, AKID, "w" * 43).health()
    assert isinstance(wrong.failure, HttpError) and wrong.failure.error_name == "AuthenticationFailedException"


def test_a_wrong_uri_path_is_invalid_uri_path(http_server: ProxyServer) -> None:
    result = XksClient(http_server.url + "/kms/xks/v1", AKID, SECRET).health()
    assert isinstance(result.failure, HttpError) and result.failure.error_name == "InvalidUriPathException"


def test_a_slow_proxy_times_out(http_server: ProxyServer) -> None:
    http_server.proxy.controls.set_latency(200, "health")
    slow = XksClient(http_server.base_url, AKID, SECRET, timeout=0.03).health()
    assert isinstance(slow.failure, Timeout) and 30 <= slow.elapsed_ms < 200
    patient = XksClient(http_server.base_url, AKID, SECRET, timeout=2).health()
    assert patient.ok and patient.elapsed_ms >= 200


def test_nothing_listening_is_connection_refused(http_server: ProxyServer) -> None:
    url = http_server.base_url
    http_server.stop()
    assert isinstance(XksClient(url, AKID, SECRET).health().failure, ConnectionRefused)


def test_an_unknown_host_name_does_not_resolve() -> None:
    result = XksClient("https://no-such-proxy.invalid/kms/xks/v1", AKID, SECRET, timeout=5).health()
    assert isinstance(result.failure, NameNotResolved)


class _Canned(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, bytes]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.answers[self.path.rsplit("/", 1)[-1]]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def canned() -> Iterator[XksClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield XksClient(f"http://127.0.0.1:{server.server_address[1]}{URI_PATH}", AKID, SECRET)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


ENCRYPTED = {"ciphertext": "AAAA", "initializationVector": "AAAAAAAAAAAAAAAA", "authenticationTag": "A" * 22 + "==",
             "ciphertextDataIntegrityValue": "A" * 43 + "="}


@pytest.mark.parametrize("call, answer, detail", [
    ("health", (200, b"<html>up</html>"), "the answer is not JSON"),
    ("health", (200, b"[]"), "the answer is not a JSON object"),
    ("health", (200, json.dumps({"xksProxyFleetSize": 0}).encode()), "xksProxyFleetSize must be at least 1"),
    ("health", (200, json.dumps({"xksProxyFleetSize": 1, "ekmFleetDetails": []}).encode()),
     "ekmFleetDetails must list 1 to 10 members"),
    ("health", (500, b"Internal Server Error"), "HTTP 500 without an errorName in a JSON body"),
    ("metadata", (200, json.dumps({"keySpec": "AES_256", "keyUsage": "ENCRYPT", "keyStatus": "ENABLED"}).encode()),
     "the answer's keyUsage is missing or not a list"),
    ("encrypt", (200, json.dumps({**ENCRYPTED, "ciphertext": "AAAAAA=="}).encode()),
     "the ciphertext is 4 bytes for 3 bytes of plaintext"),
    ("encrypt", (200, json.dumps(ENCRYPTED).encode()), "ciphertextDataIntegrityValue does not match the ciphertext"),
])
def test_malformed_answers(canned: XksClient, call: str, answer: tuple[int, bytes], detail: str) -> None:
    _Canned.answers = {"health": answer, "metadata": answer, "encrypt": answer}
    result = {"health": canned.health, "metadata": lambda: canned.metadata("k"),
              "encrypt": lambda: canned.encrypt("k", b"abc")}[call]()
    assert isinstance(result.failure, MalformedResponse), result
    assert result.failure.detail == detail
    assert result.failure.status == answer[0]


def test_an_encrypt_answer_without_integrity_value_is_fine_when_none_was_asked(canned: XksClient) -> None:
    _Canned.answers = {"encrypt": (200, json.dumps(ENCRYPTED).encode())}
    result = canned.encrypt("k", b"abc", integrity_value=False)
    assert result.ok and isinstance(result.value, Encrypted) and result.value.integrity_value is None


def test_the_client_shows_no_secret() -> None:
    c = XksClient("https://xks.example.com/kms/xks/v1", AKID, SECRET_64)
    assert SECRET_64 not in repr(c) and SECRET_64 not in str(vars(c))


def test_a_bad_base_url_is_refused() -> None:
    with pytest.raises(ValueError, match="base_url must be http"):
        XksClient("xks.example.com/kms/xks/v1", AKID, SECRET)
