"""Where a proxy's host name leads: DNS against AWS; the sandbox's registry of local proxies
against the sandbox (embedded, or a ``sandbox serve`` at ``--endpoint-url``), which knows no DNS
name and calls only the proxies registered there (docs/xks-proxy.md, "The registry")."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class Route:
    kind: str  # dns | registry | unregistered | unresolved
    host: str  # the address connected to
    port: int
    scheme: str = "https"
    ca_pem: Optional[str] = None  # None: the system's trust store
    detail: str = ""


class Routes:
    """Resolves host names for one run: ``registry`` is the sandbox's (None against AWS)."""

    def __init__(self, registry: Optional[dict[str, dict[str, Any]]]) -> None:
        self.registry = registry

    def resolve(self, hostname: str) -> Route:
        name = hostname.lower()
        if self.registry is not None:
            entry = self.registry.get(name)
            if entry is None:
                return Route("unregistered", name, 443,
                             detail=f"{name} is not registered in the sandbox, whose emulator calls no proxy for it")
            return Route("registry", entry["host"], int(entry["port"]), entry.get("scheme", "https"),
                         entry.get("caPem"), f"{name} is registered in the sandbox -> {entry['host']}:{entry['port']}")
        try:
            infos = socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            return Route("unresolved", name, 443, detail=f"{name} does not resolve ({exc.strerror})")
        address = infos[0][4][0]
        return Route("dns", address, 443, detail=f"{name} resolves to {address}")


def sandbox_registry(conn: Any) -> Optional[dict[str, dict[str, Any]]]:
    """The sandbox's registry of proxies, or None when the connection is to AWS."""
    if conn.sandbox is not None:
        return dict(conn.sandbox.snapshot_settings().xks_proxies)
    if conn.endpoint_url:
        return _served_registry(conn.endpoint_url)
    return None


def _served_registry(endpoint_url: str) -> Optional[dict[str, dict[str, Any]]]:
    """A ``sandbox serve`` answers its control endpoint; anything else (a VPC endpoint of KMS, a
    FIPS endpoint) is AWS."""
    import urllib.error
    import urllib.request

    url = endpoint_url.rstrip("/") + "/_reconciler/xks-proxies"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            data = json.loads(response.read() or b"null")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
