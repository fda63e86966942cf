"""Fixtures of the XKS proxy tests: running proxies on free local ports, stopped after each test."""

from __future__ import annotations

from typing import Iterator

import pytest

from reconciler.sandbox.xks_proxy import CertificateAuthority, ProxyServer, XksProxy
from tests.xks_proxy.helpers import make_config


@pytest.fixture(scope="session")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


@pytest.fixture
def http_server() -> Iterator[ProxyServer]:
    with ProxyServer(XksProxy(make_config())) as server:
        yield server


@pytest.fixture
def https_server(ca: CertificateAuthority) -> Iterator[ProxyServer]:
    certificate = ca.issue(["xks.example.com", "localhost", "127.0.0.1"])
    with ProxyServer(XksProxy(make_config()), certificate=certificate, ca_pem=ca.cert_pem) as server:
        yield server
