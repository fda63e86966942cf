"""A local XKS proxy: the AWS KMS External Key Store Proxy API (v1) for the sandbox.

It depends on nothing else of ``reconciler`` and can run on its own. The parts:

- :mod:`.config`: the YAML configuration file (``load_config``, ``ProxyConfig``)
- :mod:`.app`: the request handling (``XksProxy``), testable without sockets
- :mod:`.server`: serving it over HTTP or HTTPS from a thread (``ProxyServer``, ``serve``)
- :mod:`.tls`: the sandbox CA and the server certificates it issues
- :mod:`.client`: a signed client returning typed results and failures (``XksClient``)
- :mod:`.sigv4`, :mod:`.crypto`, :mod:`.messages`, :mod:`.controls`, :mod:`.errors`: the pieces
"""

from reconciler.sandbox.xks_proxy.app import CallRecord, Request, Response, XksProxy
from reconciler.sandbox.xks_proxy.client import CallResult, Failure, XksClient
from reconciler.sandbox.xks_proxy.config import ConfigError, ProxyConfig, load_config, parse_config
from reconciler.sandbox.xks_proxy.errors import ERROR_STATUS, XksError
from reconciler.sandbox.xks_proxy.server import ProxyServer, ServerInfo, serve
from reconciler.sandbox.xks_proxy.tls import CertificateAuthority, ServerCertificate, self_signed_certificate

__all__ = [
    "CallRecord", "CallResult", "CertificateAuthority", "ConfigError", "ERROR_STATUS", "Failure", "ProxyConfig",
    "ProxyServer", "Request", "Response", "ServerCertificate", "ServerInfo", "XksClient", "XksError", "XksProxy",
    "load_config", "parse_config", "self_signed_certificate", "serve",
]
