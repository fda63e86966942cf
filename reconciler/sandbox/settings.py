"""Sandbox settings: the clock, the connection timing and the fault model.

One :class:`SandboxSettings` is active per process (see :func:`current`). The embedded sandbox
persists it with the emulated account, ``sandbox serve`` keeps it in memory and changes it through
its control endpoint, and tests build their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# KMS's default request quotas live in a tiny module of their own, which the product's rate limiter
# reads too; the name stays importable from here.
from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS  # noqa: F401
from reconciler.sandbox.clock import SandboxClock

CONNECTION_ERROR_CODES = (
    "INVALID_CREDENTIALS",
    "CLUSTER_NOT_FOUND",
    "NETWORK_ERRORS",
    "INTERNAL_ERROR",
    "INSUFFICIENT_CLOUDHSM_HSMS",
    "USER_LOCKED_OUT",
    "USER_NOT_FOUND",
    "USER_LOGGED_IN",
    "SUBNET_NOT_FOUND",
    "INSUFFICIENT_FREE_ADDRESSES_IN_SUBNET",
    "XKS_PROXY_ACCESS_DENIED",
    "XKS_PROXY_NOT_REACHABLE",
    "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND",
    "XKS_PROXY_INVALID_RESPONSE",
    "XKS_PROXY_INVALID_CONFIGURATION",
    "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION",
    "XKS_PROXY_TIMED_OUT",
    "XKS_PROXY_INVALID_TLS_CONFIGURATION",
)

XKS_PROXY_FAULTS = (
    "XksProxyUriUnreachableException",
    "XksProxyIncorrectAuthenticationCredentialException",
    "XksProxyInvalidResponseException",
    "XksProxyInvalidConfigurationException",
)


@dataclass
class Faults:
    """What the emulator does wrong on purpose."""

    # store name -> ConnectionErrorCode: ConnectCustomKeyStore of that store ends FAILED.
    connection_errors: dict[str, str] = field(default_factory=dict)
    # store name -> XksProxy* exception raised by Create/UpdateCustomKeyStore of a
    # PUBLIC_ENDPOINT store of that name (KMS contacts the proxy then).
    proxy_errors: dict[str, str] = field(default_factory=dict)
    # real milliseconds added to every request (outside the emulator lock, so concurrent
    # callers overlap as they would against a remote service)
    latency_ms: float = 0.0
    # fraction of requests answered with ThrottlingException / KMSInternalException
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    # fraction of successful mutating requests whose change is made but whose response is
    # replaced by KMSInternalException (a lost response: the caller must not create twice)
    lost_response_rate: float = 0.0
    # per-operation requests-per-second quotas, enforced when on
    quotas_enabled: bool = False
    quota_overrides: dict[str, float] = field(default_factory=dict)
    # store name -> external key ids that the store's external key manager does not have
    # (CreateKey with such an XksKeyId: XksKeyNotFoundException)
    xks_missing_keys: dict[str, list[str]] = field(default_factory=dict)
    # store name -> external key ids that exist but are not enabled AES-256 encrypt/decrypt
    # keys (CreateKey with such an XksKeyId: XksKeyInvalidConfigurationException)
    xks_invalid_keys: dict[str, list[str]] = field(default_factory=dict)

    def quota_for(self, operation: str) -> float | None:
        if not self.quotas_enabled:
            return None
        return self.quota_overrides.get(operation, KMS_DEFAULT_QUOTAS.get(operation))


@dataclass
class SandboxSettings:
    clock: SandboxClock = field(default_factory=SandboxClock)
    # emulator-clock seconds from ConnectCustomKeyStore to CONNECTED (or FAILED)
    connect_delay_seconds: float = 5.0
    # emulator-clock seconds from DisconnectCustomKeyStore to DISCONNECTED
    disconnect_delay_seconds: float = 1.0
    # custom key stores per account and Region (KMS Developer Guide, "Resource quotas":
    # "Custom key store resource quota: 10"); CreateCustomKeyStore beyond it: LimitExceededException
    custom_key_store_quota: int = 10
    faults: Faults = field(default_factory=Faults)
    # XKS proxy host name (lower case) -> where it answers: {"host", "port", "scheme", "caPem"}.
    # A store whose XksProxyUriEndpoint names a registered host is served by that proxy
    # (reconciler.sandbox.xks_link); other stores behave as if their proxy always answered well.
    xks_proxies: dict[str, dict] = field(default_factory=dict)
    # the roles STS lets the sandbox's caller assume: role ARN -> the external id it requires (or None)
    roles: dict[str, str | None] = field(default_factory=dict)
    seed: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("rng", None)
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("xks_proxies", {})  # a state saved before the registry existed
        self.__dict__.update(state)
        self.rng = random.Random(self.seed)


_current = SandboxSettings()


def current() -> SandboxSettings:
    """The settings the emulator consults on every request in this process."""
    return _current


def activate(settings: SandboxSettings) -> SandboxSettings:
    """Make ``settings`` the active ones; returns the previous ones."""
    global _current
    previous, _current = _current, settings
    return previous
