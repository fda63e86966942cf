"""The checks of one store's proxy, in order; each gives :class:`PreflightCheck` results.

What KMS makes of each answer comes from one table shared with the emulator,
:mod:`reconciler.sandbox.xks_proxy.outcomes` (the proxy package depends on nothing of the product).
No secret appears in a result: a credential is named by its access key id only.
"""

from __future__ import annotations

import socket
import ssl
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional

from reconciler.aws.connection_errors import fix_for
from reconciler.plan.model import PreflightCheck
from reconciler.preflight.routes import Route

LATENCY_SAMPLES = 5
EXPIRY_WARNING_DAYS = 30
MEASURE_TIMEOUT_SECONDS = 2.0  # long enough to measure a slow proxy; KMS gives 250 ms

KEY_FIXES = {
    "XksKeyNotFoundException": "create the external key in the external key manager, or correct xksKeyId",
    "XksKeyInvalidConfigurationException": "the external key must be an enabled AES_256 key whose usage includes "
                                           "ENCRYPT and DECRYPT: fix it in the external key manager, or declare "
                                           "another xksKeyId",
    "CustomKeyStoreInvalidStateException": "the proxy cannot describe the key now; check the proxy and its EKM",
}


@dataclass
class Subject:
    """What one store's checks need: where, as whom, and what KMS would do with it."""

    store: str
    hostname: str
    uri_path: str
    access_key_id: str
    secret: str = field(repr=False)  # never printed
    keys: tuple[tuple[str, bool], ...]  # (xksKeyId, a create_key step is planned for it)
    rotation: bool  # the steps send a new credential to a store that exists


def _fail(subject: Subject, check: str, message: str, code: Optional[str], exception: Optional[str],
          key: Optional[str] = None, fix: Optional[str] = None) -> PreflightCheck:
    return PreflightCheck(subject.store, check, "fail", message, key=key, code=code, exception=exception,
                          fix=fix or fix_for(code).rstrip("."))


def check_tls(subject: Subject, route: Route) -> PreflightCheck:
    from reconciler.sandbox.xks_proxy.tls import client_context

    if route.scheme != "https":
        return PreflightCheck(subject.store, "tls", "not_checked",
                              "the sandbox proxy serves plain HTTP (started with --no-tls); KMS itself needs HTTPS")
    context = client_context(route.ca_pem.encode("ascii") if route.ca_pem else None)
    try:
        with socket.create_connection((route.host, route.port), timeout=MEASURE_TIMEOUT_SECONDS) as raw:
            with context.wrap_socket(raw, server_hostname=subject.hostname) as tls:
                version, cert = tls.version(), tls.getpeercert()
    except ssl.SSLCertVerificationError as exc:
        return _fail(subject, "tls", f"the certificate of {subject.hostname} is refused: {exc.verify_message}",
                     "XKS_PROXY_INVALID_TLS_CONFIGURATION", "XksProxyUriUnreachableException")
    except (ssl.SSLError, OSError) as exc:
        code = "XKS_PROXY_INVALID_TLS_CONFIGURATION" if isinstance(exc, ssl.SSLError) else "XKS_PROXY_NOT_REACHABLE"
        return _fail(subject, "tls", f"no TLS 1.2+ session with {subject.hostname} "
                     f"({route.host}:{route.port}): {getattr(exc, 'reason', None) or exc}",
                     code, "XksProxyUriUnreachableException")
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), timezone.utc)
    days = (expires - datetime.now(timezone.utc)).days
    if days < EXPIRY_WARNING_DAYS:
        return PreflightCheck(subject.store, "tls", "warn",
                              f"{version}; the certificate of {subject.hostname} expires in {days} day(s), "
                              f"{expires:%Y-%m-%d}", code="XKS_PROXY_INVALID_TLS_CONFIGURATION",
                              fix="renew the proxy's certificate before it expires")
    return PreflightCheck(subject.store, "tls", "ok",
                          f"{version}; a valid certificate for {subject.hostname}, until {expires:%Y-%m-%d}")


def client(subject: Subject, route: Route, timeout: float = MEASURE_TIMEOUT_SECONDS) -> Any:
    from reconciler.sandbox.xks_proxy.client import XksClient

    return XksClient(f"{route.scheme}://{subject.hostname}{subject.uri_path}", subject.access_key_id, subject.secret,
                     timeout=timeout, ca_pem=route.ca_pem, connect_to=(route.host, route.port))


def as_kms_sees(call: Any, first: Any) -> Any:
    """``first``, the result of ``call()``, as KMS would see it: an answer slower than KMS's 250 ms
    is, to KMS, a timeout, whatever it said (the emulator gives up the same way). One slow call may
    be a blip: it counts when the median of :data:`LATENCY_SAMPLES` calls is over the limit too."""
    from reconciler.sandbox.xks_proxy.outcomes import KMS_TIMEOUT_MS
    from reconciler.sandbox.xks_proxy.results import CallResult, Timeout

    if first.elapsed_ms <= KMS_TIMEOUT_MS:
        return first
    samples = [first.elapsed_ms] + [call().elapsed_ms for _ in range(LATENCY_SAMPLES - 1)]
    median = statistics.median(samples)
    if median <= KMS_TIMEOUT_MS:
        return first
    return CallResult(None, Timeout(f"it answers in {median:.0f} ms (median of {len(samples)} calls), after KMS "
                                    f"gives up ({KMS_TIMEOUT_MS} ms)"), first.elapsed_ms)


def check_health(subject: Subject, route: Route) -> tuple[list[PreflightCheck], bool]:
    """Health with the manifest's credential, the EKM fleet, and latency; (results, go on)."""
    from reconciler.sandbox.xks_proxy.outcomes import KMS_TIMEOUT_MS, connection_error_code, store_exception

    proxy = client(subject, route)
    first = as_kms_sees(proxy.health, proxy.health())
    name = "credential" if subject.rotation else "health"
    who = f"accessKeyId {subject.access_key_id}"
    if not first.ok:
        code, exception = connection_error_code(first), store_exception(first)
        what = "the new credential is refused before the update is sent" if subject.rotation else "health fails"
        return [_fail(subject, name, f"{what} ({who}): {first.failure}", code, exception)], False
    results = [PreflightCheck(subject.store, name, "ok",
                              ("the new credential is accepted by the proxy before the update is sent"
                               if subject.rotation else "the proxy answers health") + f" ({who})")]
    fleet = first.value.fleet
    states = ", ".join(f"{m.id} {m.health_status}" for m in fleet)
    if all(m.health_status == "UNAVAILABLE" for m in fleet):
        results.append(_fail(subject, "ekm", f"every EKM of the fleet is UNAVAILABLE ({states})",
                             "XKS_PROXY_NOT_REACHABLE", "XksProxyUriUnreachableException",
                             fix="bring the external key manager back up (KMS treats a proxy whose whole fleet is "
                                 "UNAVAILABLE as not reachable)"))
        return results, False
    if any(m.health_status != "ACTIVE" for m in fleet):
        results.append(PreflightCheck(subject.store, "ekm", "warn", f"part of the EKM fleet is not ACTIVE ({states})",
                                      fix="check the degraded members of the external key manager"))
    else:
        results.append(PreflightCheck(subject.store, "ekm", "ok", f"the EKM fleet is ACTIVE ({states})"))
    samples = [first.elapsed_ms]
    for _ in range(LATENCY_SAMPLES - 1):
        more = proxy.health()
        samples.append(more.elapsed_ms if more.ok else MEASURE_TIMEOUT_SECONDS * 1000)
    median, worst = statistics.median(samples), max(samples)
    figures = f"median {median:.0f} ms, worst {worst:.0f} ms of {len(samples)} calls; KMS allows {KMS_TIMEOUT_MS} ms"
    if median > KMS_TIMEOUT_MS:
        results.append(_fail(subject, "latency", figures, "XKS_PROXY_TIMED_OUT", "XksProxyUriUnreachableException",
                             fix="make the proxy answer within 250 ms (35 ms or less is recommended): its "
                                 "performance, its network path, or a proxy closer to the AWS Region"))
    elif worst > KMS_TIMEOUT_MS:
        results.append(PreflightCheck(subject.store, "latency", "warn", figures, code="XKS_PROXY_TIMED_OUT",
                                      fix="some calls take longer than KMS allows; check the proxy's load"))
    else:
        results.append(PreflightCheck(subject.store, "latency", "ok", figures))
    return results, True


def check_keys(subject: Subject, route: Route) -> list[PreflightCheck]:
    from reconciler.sandbox.xks_proxy.outcomes import key_exception, key_problem

    proxy = client(subject, route)
    results = []
    for xks_key_id, creating in subject.keys:
        result = as_kms_sees(lambda: proxy.metadata(xks_key_id), proxy.metadata(xks_key_id))
        exception = key_exception(result)
        if exception is None:
            meta = result.value
            results.append(PreflightCheck(subject.store, "key", "ok",
                                          f"{meta.key_spec}, {'/'.join(meta.key_usage)}, {meta.key_status}",
                                          key=xks_key_id))
            continue
        message = f"GetKeyMetadata: {key_problem(result)}"
        if creating:
            results.append(_fail(subject, "key", message, None, exception, key=xks_key_id, fix=KEY_FIXES[exception]))
        else:  # the KMS key exists already: KMS refuses nothing now, but its cryptography would fail
            results.append(PreflightCheck(subject.store, "key", "warn", message + " (the KMS key exists; its "
                                          "Encrypt and Decrypt would fail with KMSInvalidStateException)",
                                          key=xks_key_id, exception="KMSInvalidStateException",
                                          fix=KEY_FIXES[exception]))
    return results


def check_subject(subject: Subject, route: Route) -> list[PreflightCheck]:
    """Every check of one store, stopping at the first that makes the rest meaningless."""
    dns = PreflightCheck(subject.store, "dns", "ok", route.detail)
    if route.kind == "unresolved":
        return [_fail(subject, "dns", route.detail, "XKS_PROXY_NOT_REACHABLE", "XksProxyUriUnreachableException",
                      fix="check spec.xks.uriEndpoint, and that its host name is published in DNS")]
    results = [dns]
    tls = check_tls(subject, route)
    results.append(tls)
    if tls.status == "fail":
        return results
    health, go_on = check_health(subject, route)
    results += health
    if go_on:
        results += check_keys(subject, route)
    return results
