"""Shared pieces of the XKS proxy tests: credentials, a configuration, botocore-signed requests."""

from __future__ import annotations

import http.client
import json
import ssl
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator, Optional
from unittest import mock
from urllib.parse import urlsplit

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from reconciler.sandbox.xks_proxy import ProxyConfig, Request, Response, XksProxy

URI_PATH = "/example/uri/path/prefix/kms/xks/v1"
AKID = "ABCDEFGHIJKLMNOPQRST2345"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="  # 48 characters
AKID_2 = "ZYXWVUTSRQPONMLKJIHGFEDCBA7654"  # 30 characters, the longest allowed
SECRET_64 = "QmFzZTY0LWVuY29kZWQtNjQtY2hhcmFjdGVyLXNlY3JldC1hY2Nlc3Mta2V5LTAx"  # the longest allowed
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)

KEYS = [
    {"id": "aes-key"},
    {"id": "encrypt-only", "usage": ["ENCRYPT"]},
    {"id": "decrypt-only", "usage": ["DECRYPT"]},
    {"id": "no-usage", "usage": []},
    {"id": "disabled-key", "status": "DISABLED"},
    {"id": "rsa-key", "spec": "RSA_2048"},
]


def make_config(**overrides: Any) -> ProxyConfig:
    data: dict[str, Any] = {
        "uriPath": URI_PATH,
        "credentials": [{"accessKeyId": AKID, "secretAccessKey": SECRET},
                        {"accessKeyId": AKID_2, "secretAccessKey": SECRET_64}],
        "keys": KEYS,
        "ekm": {"vendor": "Test EKM vendor", "fleet": [{"id": "hsm-1", "model": "Test HSM 2.0"},
                                                       {"id": "hsm-2", "model": "Test HSM 2.0"}]},
    }
    data.update(overrides)
    return ProxyConfig.model_validate(data)


def metadata(operation: str = "Encrypt", **extra: str) -> dict[str, str]:
    return {"awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
            "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "kmsOperation": operation, "kmsRequestId": "4112f4d6-db54-4af4-ae30-c55a22a8dfae", **extra}


@contextmanager
def signing_at(when: datetime) -> Iterator[None]:
    """botocore signs with this time instead of the wall clock."""
    with mock.patch.object(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None)):
        yield


def botocore_headers(url: str, body: bytes, akid: str = AKID, secret: str = SECRET, *,
                     region: str = "us-east-1", service: str = "kms-xks-proxy",
                     headers: Optional[dict[str, str]] = None) -> list[tuple[str, str]]:
    """The headers botocore's SigV4Auth sends for a POST of ``body`` to ``url``."""
    request = AWSRequest(method="POST", url=url, data=body,
                         headers=headers if headers is not None else {"Content-Type": "application/json"})
    botocore.auth.SigV4Auth(Credentials(akid, secret), service, region).add_auth(request)
    out = [(k, v) for k, v in request.headers.items()]
    if not any(k.lower() == "host" for k, _ in out):
        out.append(("Host", urlsplit(url).netloc))
    return out


def handle_signed(proxy: XksProxy, suffix: str, payload: Any, *, akid: str = AKID, secret: str = SECRET,
                  when: datetime = NOW, method: str = "POST", host: str = "xks.example.com") -> Response:
    """Sign with botocore at ``when`` and hand the request to the proxy, without a socket."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    path = URI_PATH + suffix if not suffix.startswith("!") else suffix[1:]
    with signing_at(when):
        headers = botocore_headers(f"https://{host}{path}", body, akid, secret)
    return proxy.handle(Request(method, path, tuple(headers), body))


def post_signed(base_url: str, suffix: str, payload: Any, *, akid: str = AKID, secret: str = SECRET,
                method: str = "POST", context: Optional[ssl.SSLContext] = None,
                path: Optional[str] = None) -> tuple[int, Any]:
    """Send a botocore-signed request over the network; return the status and the JSON body."""
    parts = urlsplit(base_url)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    target = path if path is not None else parts.path + suffix
    headers = botocore_headers(f"{parts.scheme}://{parts.netloc}{target}", body, akid, secret)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=5,
                                                                       context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        conn.close()
