"""What KMS makes of a proxy call's result: one table, read by the emulator and by preflight.

The KMS API Reference names the outcomes but publishes no table from a proxy's errorName to them;
the decisions below follow the descriptions of each exception and ConnectionErrorCode
(docs/xks-proxy.md, "What KMS makes of a proxy's answer"):

- CreateCustomKeyStore / UpdateCustomKeyStore (health): an AuthenticationFailedException is
  ``XksProxyIncorrectAuthenticationCredentialException``; an InvalidUriPathException or
  AccessDeniedException ``XksProxyInvalidConfigurationException``; a ThrottlingException,
  DependencyTimeoutException, a network, TLS or timeout failure, or a fleet whose every member is
  UNAVAILABLE ``XksProxyUriUnreachableException``; any other error or a malformed answer
  ``XksProxyInvalidResponseException``.
- ConnectCustomKeyStore (health): ``INVALID_CREDENTIALS``, ``XKS_PROXY_ACCESS_DENIED``,
  ``XKS_PROXY_INVALID_CONFIGURATION`` (the path), ``XKS_PROXY_INVALID_TLS_CONFIGURATION``,
  ``XKS_PROXY_TIMED_OUT`` (no answer within the limit, DependencyTimeoutException),
  ``XKS_PROXY_NOT_REACHABLE`` (no connection, a ThrottlingException, every EKM UNAVAILABLE),
  ``XKS_PROXY_INVALID_RESPONSE`` (anything else).
- CreateKey (GetKeyMetadata): KeyNotFoundException is ``XksKeyNotFoundException``; a key that is
  not AES_256, lacks ENCRYPT or DECRYPT, is not ENABLED (or an InvalidStateException /
  InvalidKeyUsageException) ``XksKeyInvalidConfigurationException``; any other failure
  ``CustomKeyStoreInvalidStateException``.
"""

from __future__ import annotations

from typing import Any, Optional

from reconciler.sandbox.xks_proxy.results import (
    CallResult,
    HttpError,
    MalformedResponse,
    Timeout,
    TlsFailure,
)

# KMS gives each proxy call this long (XKS Proxy API Specification, "Timeouts").
KMS_TIMEOUT_MS = 250


def fleet_unavailable(result: CallResult[Any]) -> bool:
    health = result.value
    return bool(result.ok and health is not None
                and all(m.health_status == "UNAVAILABLE" for m in health.fleet))


def connection_error_code(result: CallResult[Any]) -> Optional[str]:
    """The ConnectionErrorCode a health call's result ends a connection with; None: CONNECTED."""
    if result.ok:
        return "XKS_PROXY_NOT_REACHABLE" if fleet_unavailable(result) else None
    failure = result.failure
    if isinstance(failure, HttpError):
        return {
            "AuthenticationFailedException": "INVALID_CREDENTIALS",
            "AccessDeniedException": "XKS_PROXY_ACCESS_DENIED",
            "InvalidUriPathException": "XKS_PROXY_INVALID_CONFIGURATION",
            "DependencyTimeoutException": "XKS_PROXY_TIMED_OUT",
            "ThrottlingException": "XKS_PROXY_NOT_REACHABLE",
        }.get(failure.error_name, "XKS_PROXY_INVALID_RESPONSE")
    if isinstance(failure, MalformedResponse):
        return "XKS_PROXY_INVALID_RESPONSE"
    if isinstance(failure, TlsFailure):
        return "XKS_PROXY_INVALID_TLS_CONFIGURATION"
    if isinstance(failure, Timeout):
        return "XKS_PROXY_TIMED_OUT"
    return "XKS_PROXY_NOT_REACHABLE"


def store_exception(result: CallResult[Any]) -> Optional[str]:
    """The exception Create/UpdateCustomKeyStore raises after this health call; None: success."""
    if result.ok:
        return "XksProxyUriUnreachableException" if fleet_unavailable(result) else None
    failure = result.failure
    if isinstance(failure, HttpError):
        return {
            "AuthenticationFailedException": "XksProxyIncorrectAuthenticationCredentialException",
            "InvalidUriPathException": "XksProxyInvalidConfigurationException",
            "AccessDeniedException": "XksProxyInvalidConfigurationException",
            "ThrottlingException": "XksProxyUriUnreachableException",
            "DependencyTimeoutException": "XksProxyUriUnreachableException",
        }.get(failure.error_name, "XksProxyInvalidResponseException")
    if isinstance(failure, MalformedResponse):
        return "XksProxyInvalidResponseException"
    return "XksProxyUriUnreachableException"


def key_problem(result: CallResult[Any]) -> Optional[str]:
    """What is wrong with an external key for KMS, from a GetKeyMetadata result; None: usable."""
    if result.ok:
        meta = result.value
        problems = []
        if meta.key_spec != "AES_256":
            problems.append(f"its keySpec is {meta.key_spec}, not AES_256")
        missing = [u for u in ("ENCRYPT", "DECRYPT") if u not in meta.key_usage]
        if missing:
            problems.append(f"its keyUsage lacks {' and '.join(missing)}")
        if meta.key_status != "ENABLED":
            problems.append(f"its keyStatus is {meta.key_status}, not ENABLED")
        return "; ".join(problems) or None
    return str(result.failure)


def key_exception(result: CallResult[Any]) -> Optional[str]:
    """The exception CreateKey raises after this GetKeyMetadata call; None: success."""
    if result.ok:
        return "XksKeyInvalidConfigurationException" if key_problem(result) else None
    failure = result.failure
    if isinstance(failure, HttpError):
        if failure.error_name == "KeyNotFoundException":
            return "XksKeyNotFoundException"
        if failure.error_name in ("InvalidStateException", "InvalidKeyUsageException"):
            return "XksKeyInvalidConfigurationException"
    return "CustomKeyStoreInvalidStateException"
