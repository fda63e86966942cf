"""Every errorName of the specification, with its status, reached by a real request over HTTP.

Requests are signed by botocore's SigV4Auth and sent with http.client: an independent client.
Most errors come from real conditions; AccessDenied, Throttling and DependencyTimeout (and also
Unsupported and Internal) are injected, the proxy having no policy, quota or dependency of its own.
"""

from __future__ import annotations

import base64
from typing import Any, Callable

import pytest

from reconciler.sandbox.xks_proxy import ERROR_STATUS, ProxyServer
from tests.xks_proxy.helpers import SECRET_64, metadata, post_signed

b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731


def encrypt_body(**extra: Any) -> dict:
    return {"requestMetadata": metadata(), "plaintext": b64(b"hello"), "encryptionAlgorithm": "AES_GCM", **extra}


def tampered_ciphertext(server: ProxyServer) -> dict:
    status, out = post_signed(server.base_url, "/keys/aes-key/encrypt", encrypt_body())
    assert status == 200
    return {"requestMetadata": metadata("Decrypt"), "encryptionAlgorithm": "AES_GCM", "ciphertext": out["ciphertext"],
            "ciphertextMetadata": out["ciphertextMetadata"], "initializationVector": out["initializationVector"],
            "authenticationTag": b64(bytes(16))}


def inject(name: str, **where: Any) -> Callable[[ProxyServer], None]:
    return lambda server: server.proxy.controls.inject_error(name, **where) and None


# errorName -> (prepare the proxy, path suffix, body or body factory, request options)
CASES: dict[str, tuple[Callable[[ProxyServer], None] | None, str, Any, dict]] = {
    "ValidationException": (None, "/keys/aes-key/encrypt", encrypt_body(encryptionAlgorithm="DES"), {}),
    "InvalidStateException": (None, "/keys/disabled-key/encrypt", encrypt_body(), {}),
    "InvalidCiphertextException": (None, "/keys/aes-key/decrypt", tampered_ciphertext, {}),
    "InvalidKeyUsageException": (None, "/keys/decrypt-only/encrypt", encrypt_body(), {}),
    "AuthenticationFailedException": (None, "/health", {}, {"secret": SECRET_64}),
    "AccessDeniedException": (inject("AccessDeniedException", key_id="aes-key"), "/keys/aes-key/encrypt",
                              encrypt_body(), {}),
    "KeyNotFoundException": (None, "/keys/no-such-key/metadata", {"requestMetadata": metadata()}, {}),
    "InvalidUriPathException": (None, "", {}, {"path": "/wrong/prefix/kms/xks/v1/health"}),
    "ThrottlingException": (inject("ThrottlingException", kind="health"), "/health", {}, {}),
    "InternalException": (lambda s: s.proxy.controls.set_health("UNAVAILABLE"), "/keys/aes-key/metadata",
                          {"requestMetadata": metadata()}, {}),
    "UnsupportedOperationException": (None, "/keys/aes-key/encrypt", encrypt_body(plaintext=b64(bytes(4301))), {}),
    "DependencyTimeoutException": (inject("DependencyTimeoutException", kind="encrypt"), "/keys/aes-key/encrypt",
                                   encrypt_body(), {}),
}


def test_the_cases_cover_the_whole_table() -> None:
    assert sorted(CASES) == sorted(ERROR_STATUS)
    assert len(ERROR_STATUS) == 12


@pytest.mark.parametrize("error_name", sorted(CASES))
def test_each_error_with_its_status(http_server: ProxyServer, error_name: str) -> None:
    prepare, suffix, body, options = CASES[error_name]
    if callable(body):
        body = body(http_server)
    if prepare is not None:
        prepare(http_server)
    status, answer = post_signed(http_server.base_url, suffix, body, **options)
    assert (status, answer["errorName"]) == (ERROR_STATUS[error_name], error_name), answer
    assert isinstance(answer["errorMessage"], str) and answer["errorMessage"]


@pytest.mark.parametrize("error_name", ["InternalException", "UnsupportedOperationException"])
def test_the_conditions_above_can_also_be_injected(http_server: ProxyServer, error_name: str) -> None:
    http_server.proxy.controls.inject_error(error_name, kind="health")
    status, answer = post_signed(http_server.base_url, "/health", {})
    assert (status, answer["errorName"]) == (ERROR_STATUS[error_name], error_name)


def test_405_over_http(http_server: ProxyServer) -> None:
    status, answer = post_signed(http_server.base_url, "/health", b"", method="GET")
    assert status == 405 and "POST" in answer["errorMessage"]
