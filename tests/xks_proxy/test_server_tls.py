"""The proxy on a socket: HTTPS with the sandbox CA, the broken certificates, start and stop."""

from __future__ import annotations

import http.client
import ssl
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from reconciler.sandbox.xks_proxy import (CertificateAuthority, ProxyServer, XksClient, XksProxy,
                                          self_signed_certificate, serve)
from reconciler.sandbox.xks_proxy.client import ConnectionRefused, TlsFailure
from tests.xks_proxy.helpers import AKID, SECRET, URI_PATH, make_config, post_signed

HEALTH = {"requestMetadata": {"kmsRequestId": "r", "kmsOperation": "KmsHealthCheck"}}


def client(server: ProxyServer, *, hostname: str = "xks.example.com", **options) -> XksClient:
    """A client for https://HOSTNAME/... that connects to the local server (as a registry would)."""
    return XksClient(f"https://{hostname}{URI_PATH}", AKID, SECRET, connect_to=(server.host, server.port), **options)


def test_https_with_a_certificate_from_the_sandbox_ca(https_server: ProxyServer, ca: CertificateAuthority) -> None:
    result = client(https_server, ca_pem=ca.cert_pem).health()
    assert result.ok, result.failure
    assert https_server.proxy.calls[-1].access_key_id == AKID
    # any other client that trusts the CA works too: botocore-signed, stdlib ssl
    status, _ = post_signed(https_server.url.replace("127.0.0.1", "localhost") + URI_PATH, "/health", HEALTH,
                            context=ca.client_context())
    assert status == 200


def test_a_client_that_does_not_trust_the_ca_refuses_the_certificate(https_server: ProxyServer) -> None:
    result = client(https_server, ca_pem=CertificateAuthority.create().cert_pem).health()
    assert isinstance(result.failure, TlsFailure) and result.failure.verify_code == 20
    assert len(https_server.proxy.calls) == 0  # the request never arrived


@pytest.mark.parametrize("variant, code, words", [
    ("expired", 10, "certificate has expired"),
    ("self-signed", 18, "self-signed certificate"),
    ("wrong-hostname", 62, "Hostname mismatch"),
])
def test_broken_certificates_fail_verification(ca: CertificateAuthority, variant: str, code: int, words: str) -> None:
    now = datetime.now(timezone.utc)
    certificate = {
        "expired": lambda: ca.issue(["xks.example.com"], not_before=now - timedelta(days=90),
                                    not_after=now - timedelta(days=1)),
        "self-signed": lambda: self_signed_certificate(["xks.example.com"]),
        "wrong-hostname": lambda: ca.issue(["other.example.com"]),
    }[variant]()
    with ProxyServer(XksProxy(make_config()), certificate=certificate, ca_pem=ca.cert_pem) as server:
        result = client(server, ca_pem=ca.cert_pem).health()
        assert isinstance(result.failure, TlsFailure), result
        assert result.failure.verify_code == code and words in result.failure.detail
        # the server survives a failed handshake and serves the next client
        assert client(server, ssl_context=ssl._create_unverified_context()).health().ok


def test_tls_1_2_is_the_minimum(https_server: ProxyServer, ca: CertificateAuthority) -> None:
    assert https_server.certificate is not None
    assert https_server.certificate.server_context().minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = ca.client_context()
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    assert client(https_server, ssl_context=tls12).health().ok
    assert ca.client_context().minimum_version == ssl.TLSVersion.TLSv1_2


def test_the_server_reports_where_it_is_and_what_to_trust(https_server: ProxyServer, ca: CertificateAuthority) -> None:
    info = https_server.info()
    assert (info.host, info.scheme, info.hostname) == ("127.0.0.1", "https", "xks.example.com")
    assert info.port == https_server.port > 0
    assert info.url == f"https://127.0.0.1:{info.port}" == https_server.url
    assert info.base_url == info.url + URI_PATH == https_server.base_url
    assert info.ca_pem == ca.cert_pem.decode()
    assert SECRET not in repr(info)


def test_serve_a_configuration_file_over_https_and_http(tmp_path: Path, ca: CertificateAuthority,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(f"uriPath: {URI_PATH}\ncredentials:\n  - accessKeyId: {AKID}\n"
                    f"    secretAccessKey: {{fromEnv: XKS_PROXY_TEST_SECRET}}\nkeys: [{{id: k}}]\n")
    monkeypatch.setenv("XKS_PROXY_TEST_SECRET", SECRET)
    with serve(path, hostname="xks.example.com", ca=ca) as server:
        assert server.scheme == "https" and server.info().hostname == "xks.example.com"
        assert client(server, ca_pem=ca.cert_pem).metadata("k").value.key_status == "ENABLED"
        # the certificate also names localhost and the address it listens on
        assert XksClient(server.base_url, AKID, SECRET, ca_pem=server.ca_pem).health().ok
    with serve(path, tls=False) as server:
        assert server.url.startswith("http://") and server.info().ca_pem is None
        assert XksClient(server.base_url, AKID, SECRET).health().ok


def test_stop_ends_kept_alive_connections_and_frees_the_port(http_server: ProxyServer) -> None:
    conn = http.client.HTTPConnection(http_server.host, http_server.port, timeout=5)
    conn.request("POST", "/nope", body=b"{}")
    response = conn.getresponse()
    assert response.status == 404 and response.getheader("Connection") != "close"
    response.read()
    before = threading.active_count()
    http_server.stop()
    assert conn.sock is not None and conn.sock.recv(1) == b""  # the server closed the kept-alive connection
    conn.close()
    assert threading.active_count() < before
    http_server.stop()  # twice is fine
    assert isinstance(XksClient(http_server.base_url, AKID, SECRET).health().failure, ConnectionRefused)


def test_concurrent_clients(https_server: ProxyServer, ca: CertificateAuthority) -> None:
    c = client(https_server, ca_pem=ca.cert_pem)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: c.encrypt("aes-key", b"x" * i, b"aad"), range(1, 17)))
    assert all(r.ok for r in results)
    assert all(c.decrypt("aes-key", r.value, b"aad").value.plaintext == b"x" * i
               for i, r in enumerate(results, start=1))


def test_the_ca_is_kept_in_a_directory_with_a_private_key(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "sandbox")
    again = CertificateAuthority.load_or_create(tmp_path / "sandbox")
    assert first.cert_pem == again.cert_pem
    key_file = tmp_path / "sandbox" / "xks-proxy-ca-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" not in repr(first).encode()


@pytest.mark.parametrize("headers", [
    {"Content-Length": "lots"},
    {"Content-Length": str(2 * 1024 * 1024)},
    {"Transfer-Encoding": "chunked"},
])
def test_a_body_without_a_usable_length_is_refused_before_it_is_read(http_server: ProxyServer, headers) -> None:
    conn = http.client.HTTPConnection(http_server.host, http_server.port, timeout=5)
    try:
        conn.putrequest("POST", URI_PATH + "/health")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 400 and response.getheader("Connection") == "close"
        assert b"ValidationException" in response.read()
    finally:
        conn.close()
