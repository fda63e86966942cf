"""The emulator served over HTTP in this process, and a raw KMS client for it.

``serve()`` starts :class:`reconciler.sandbox.server.SandboxServer` (moto's server application
with the extension installed) on a free port, with settings of its own (a frozen emulator clock);
``RawKms`` sends KMS requests with nothing but ``http.client`` and botocore's SigV4 signer, so a
test controls every byte of the request and sees every byte of the response.
"""

from __future__ import annotations

import http.client
import json
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import urlparse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from reconciler.sandbox.clock import SandboxClock
from reconciler.sandbox.host import MemoryHost, activate_host
from reconciler.sandbox.settings import SandboxSettings, activate

REGION = "us-east-1"
CREDENTIALS = Credentials("AKIAIOSFODNN7EXAMPLE", "testing")


@contextmanager
def serve() -> Iterator[tuple[str, SandboxSettings]]:
    from moto.core.base_backend import BackendDict

    from reconciler.sandbox.server import SandboxServer

    settings = SandboxSettings(clock=SandboxClock(frozen_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    previous, previous_host = activate(settings), activate_host(MemoryHost())
    BackendDict.reset()
    server = SandboxServer().start()
    try:
        yield server.url, settings
    finally:
        server.stop()
        BackendDict.reset()
        activate(previous)
        activate_host(previous_host)


def reset_account() -> None:
    from moto.core.base_backend import BackendDict

    BackendDict.reset()


class RawKms:
    """KMS over HTTP with no SDK: ``call`` returns (status, headers, body bytes)."""

    def __init__(self, url: str, region: str = REGION) -> None:
        self.url = url
        self.region = region
        parsed = urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)

    def close(self) -> None:
        self.connection.close()

    def call(
        self,
        operation: str,
        body: Any = None,
        *,
        sign: bool = True,
        target: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        if body is None:
            body = {}
        data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        request_headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": target if target is not None else f"TrentService.{operation}",
            **(headers or {}),
        }
        request = AWSRequest(method="POST", url=self.url + "/", data=data, headers=request_headers)
        if sign:
            SigV4Auth(CREDENTIALS, "kms", self.region).add_auth(request)
        prepared = request.prepare()
        try:
            self.connection.request("POST", "/", body=data, headers=dict(prepared.headers))
            response = self.connection.getresponse()
        except (http.client.HTTPException, OSError):
            self.connection.close()
            self.connection.request("POST", "/", body=data, headers=dict(prepared.headers))
            response = self.connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()

    def ok(self, operation: str, body: Any = None) -> dict[str, Any]:
        """Call, expect a 2xx, return the parsed body."""
        status, _, payload = self.call(operation, body)
        assert 200 <= status < 300, f"{operation}: HTTP {status} {payload[:500]!r}"
        return json.loads(payload or b"{}")
