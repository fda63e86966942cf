"""``reconciler sandbox serve``: the emulator as a local AWS endpoint.

moto's server application answers the AWS protocols (KMS with the custom key store extension,
STS, CloudHSM, DynamoDB...). In front of it, ``/_reconciler/*`` is the sandbox control endpoint
used by ``reconciler sandbox advance|reset|fault|seed-* --endpoint-url URL``.

Given a state directory, the server serves the embedded sandbox's account: every KMS request and
control verb runs under that directory's lock, reloading what other processes (``--sandbox``
commands) saved and saving what it changed, so ``--sandbox`` and the server see one account.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from dataclasses import asdict, fields
from typing import Any, Callable, Iterable

from reconciler.sandbox.control import (
    ClusterSeed,
    ControlError,
    EndpointServiceSeed,
    FaultChange,
    LocalControl,
    XksProxyRegistration,
)
from reconciler.sandbox.host import activate_host, host

CONTROL_PREFIX = "/_reconciler/"


def _from_payload(cls, payload: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    unknown = set(payload) - names
    if unknown:
        raise ControlError(f"unknown fields: {', '.join(sorted(unknown))}")
    return cls(**payload)


class ControlApp:
    """WSGI middleware: serves the control endpoint, passes everything else to moto."""

    def __init__(self, aws_app: Callable) -> None:
        self.aws_app = aws_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return self.aws_app(environ, start_response)
        verb = path[len(CONTROL_PREFIX):]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            payload = json.loads(body) if body else {}
            status, result = "200 OK", self.handle(verb, payload)
        except ControlError as exc:
            status, result = "400 Bad Request", {"message": str(exc)}
        except (ValueError, TypeError) as exc:
            status, result = "400 Bad Request", {"message": f"bad request: {exc}"}
        data = json.dumps(result).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def handle(self, verb: str, payload: dict[str, Any]) -> dict[str, Any]:
        control = LocalControl(host())
        if verb == "state":
            return control.status()
        if verb == "advance":
            return {"now": control.advance(float(payload["seconds"]))}
        if verb == "reset":
            control.reset()
            return {}
        if verb == "fault":
            return control.set_faults(_from_payload(FaultChange, payload))
        if verb == "seed/cluster":
            return asdict(control.seed_cluster(_from_payload(ClusterSeed, payload)))
        if verb == "seed/vpc-endpoint-service":
            return asdict(control.seed_endpoint_service(_from_payload(EndpointServiceSeed, payload)))
        if verb == "xks-proxy/register":
            control.register_xks_proxy(_from_payload(XksProxyRegistration, payload))
            return {}
        if verb == "xks-proxy/unregister":
            control.unregister_xks_proxy(str(payload["hostname"]), payload.get("port"))
            return {}
        if verb == "xks-proxies":
            return control.xks_proxies()
        if verb == "seed/role":
            return {"seeded": control.seed_role(str(payload.get("roleArn")), payload.get("externalId"))}
        raise ControlError(f"unknown control verb {verb!r}")


def make_app() -> ControlApp:
    from moto.server import DomainDispatcherApplication, create_backend_app

    from reconciler.sandbox.install import install

    install()
    return ControlApp(DomainDispatcherApplication(create_backend_app))


class SandboxServer:
    """A threaded server on a local port; ``port=0`` picks a free one (tests). With a
    ``directory``, it serves that embedded sandbox's account; without, one in its memory."""

    def __init__(self, host_address: str = "127.0.0.1", port: int = 0, directory: str | None = None) -> None:
        from werkzeug.serving import make_server

        app = make_app()
        if directory is not None:
            from reconciler.sandbox.embedded import EmbeddedHost

            served = EmbeddedHost(Path(directory))
            with served.transaction(save=False):  # an unreadable state fails here, not per request
                pass
            activate_host(served)
        # bound here, not by werkzeug: werkzeug prints an unknown host or a port in use and exits;
        # here they are an OSError for the caller to report
        listening = socket.socket(socket.AF_INET6 if ":" in host_address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listening.bind((host_address, port))
            listening.listen(128)
            self._server = make_server(host_address, port, app, threaded=True, fd=listening.fileno())  # a dup
        finally:
            listening.close()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        address, port = self._server.server_address[:2]
        return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> "SandboxServer":
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
