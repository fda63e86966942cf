"""The proxy on a socket: plain HTTP or HTTPS, served from a thread.

::

    proxy = XksProxy(load_config("xks-proxy.yaml"))
    with ProxyServer(proxy, certificate=ca.issue(["xks.example.com", "127.0.0.1"]), ca_pem=ca.cert_pem) as server:
        server.url          # https://127.0.0.1:54321
        server.base_url     # https://127.0.0.1:54321/example/kms/xks/v1
        server.info()       # host, port, scheme, hostname, CA PEM: what a registry of proxies keeps

:func:`serve` builds the whole thing from a configuration file. ``port=0`` picks a free port.
HTTP/1.1 with keep-alive; the TLS handshake runs in the connection's own thread, so a client
that fails it (an untrusted certificate) disturbs no other.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

from reconciler.sandbox.xks_proxy.app import Request, XksProxy
from reconciler.sandbox.xks_proxy.config import ProxyConfig, load_config
from reconciler.sandbox.xks_proxy.tls import CertificateAuthority, ServerCertificate

log = logging.getLogger("reconciler.sandbox.xks_proxy")

MAX_BODY_BYTES = 1024 * 1024
HANDSHAKE_TIMEOUT_SECONDS = 10
IDLE_TIMEOUT_SECONDS = 120
POLL_SECONDS = 0.05  # how soon stop() takes effect


@dataclass(frozen=True)
class ServerInfo:
    """Where a running proxy answers, and what a client must trust to reach it (no secrets)."""

    host: str
    port: int
    scheme: str  # http or https
    uri_path: str
    hostname: Optional[str]  # the name its certificate is for, when it has one
    ca_pem: Optional[str]  # the CA that issued its certificate, when known

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + self.uri_path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS  # a kept-alive connection idle this long is closed
    disable_nagle_algorithm = True  # headers and body go out at once: no 40 ms delayed-ACK stall
    server_version = "reconciler-xks-proxy"
    sys_version = ""
    server: "_HttpServer"

    def _serve(self) -> None:
        length_header = self.headers.get("Content-Length")
        try:
            length = int(length_header) if length_header is not None else 0
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES or "chunked" in self.headers.get("Transfer-Encoding", ""):
            self._send(400, b'{"errorName": "ValidationException", "errorMessage": '
                       b'"send a body of at most 1 MiB with a Content-Length"}', [("Connection", "close")])
            return
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, tuple(self.headers.items()), body)
        response = self.server.proxy.handle(request)
        self._send(response.status, response.body, [h for h in response.headers if h[0] != "Content-Type"])

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:  # the proxy logs each call itself
        log.debug("%s %s", self.address_string(), format % args)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], proxy: XksProxy, context: Optional[ssl.SSLContext]) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.proxy = proxy
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is not None:
            request.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                log.debug("TLS handshake with %s failed: %s", client_address, exc)
                return
        with self._connections_lock:
            self._connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.discard(request)
            request.close()

    def close_connections(self) -> None:
        """End every open connection (kept-alive ones included), so their threads finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class ProxyServer:
    """Serves an :class:`XksProxy` on ``host:port``: HTTPS with ``certificate``, else plain HTTP.

    ``ca_pem`` is the CA that issued ``certificate``, reported by :meth:`info` so a client (the
    emulator) knows what to trust. Use as a context manager, or :meth:`start` and :meth:`stop`;
    :meth:`serve_forever` serves in the calling thread (a CLI in the foreground).
    """

    def __init__(self, proxy: XksProxy, *, host: str = "127.0.0.1", port: int = 0,
                 certificate: Optional[ServerCertificate] = None, ca_pem: Optional[bytes] = None) -> None:
        self.proxy = proxy
        self.certificate = certificate
        self.ca_pem = ca_pem
        context = certificate.server_context() if certificate is not None else None
        self._server = _HttpServer((host, port), proxy, context)
        self._thread: Optional[threading.Thread] = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def scheme(self) -> str:
        return "https" if self.certificate is not None else "http"

    def info(self) -> ServerInfo:
        hostname = self.certificate.hostnames[0] if self.certificate is not None else None
        return ServerInfo(self.host, self.port, self.scheme, self.proxy.uri_path, hostname,
                          self.ca_pem.decode("ascii") if self.ca_pem else None)

    @property
    def url(self) -> str:
        return self.info().url

    @property
    def base_url(self) -> str:
        return self.info().base_url

    def start(self) -> "ProxyServer":
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_SECONDS,),
                                            name="xks-proxy", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever(POLL_SECONDS)
        finally:
            self._server.close_connections()
            self._server.server_close()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> "ProxyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(config: ProxyConfig | str | os.PathLike[str], *, host: str = "127.0.0.1", port: int = 0,
          tls: bool = True, hostname: Optional[str] = None, ca: Optional[CertificateAuthority] = None,
          clock: Optional[Callable[[], datetime]] = None, start: bool = True) -> ProxyServer:
    """A proxy server for ``config`` (a :class:`ProxyConfig` or the path of its YAML file).

    With ``tls`` (the default) it serves HTTPS with a certificate from ``ca`` (a new in-memory CA
    when None) for ``hostname`` (when given), ``localhost`` and ``host``. Started unless ``start``
    is False (then call :meth:`ProxyServer.serve_forever`). Raises ``ConfigError`` for a bad file
    and ``OSError`` when the address is taken.
    """
    proxy_config = config if isinstance(config, ProxyConfig) else load_config(config)
    proxy = XksProxy(proxy_config) if clock is None else XksProxy(proxy_config, clock=clock)
    certificate = None
    if tls:
        ca = ca or CertificateAuthority.create()
        names = [n for n in dict.fromkeys([hostname, "localhost", host]) if n and n not in ("0.0.0.0", "::")]
        certificate = ca.issue(names)
    server = ProxyServer(proxy, host=host, port=port, certificate=certificate,
                         ca_pem=ca.cert_pem if ca is not None and tls else None)
    return server.start() if start else server
