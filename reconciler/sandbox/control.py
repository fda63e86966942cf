"""Sandbox control: move the clock, reset, set faults, seed fixtures.

The same verbs act on the embedded sandbox (a state directory) or on a running ``sandbox serve``
(over its ``/_reconciler/`` control endpoint), so ``reconciler sandbox advance 8d`` works against
either.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from reconciler.sandbox.errors import SandboxError
from reconciler.sandbox.settings import (
    CONNECTION_ERROR_CODES,
    KMS_DEFAULT_QUOTAS,
    XKS_PROXY_FAULTS,
    SandboxSettings,
)

DEFAULT_ACCOUNT = "123456789012"


class ControlError(SandboxError):
    """A sandbox control request a user can fix (bad value, server not reachable...)."""


@dataclass
class FaultChange:
    """A change to the fault model; None leaves a setting as it is."""

    clear: bool = False
    store: str | None = None
    connection_error: str | None = None
    proxy_error: str | None = None
    latency_ms: float | None = None
    throttle_rate: float | None = None
    error_rate: float | None = None
    lost_response_rate: float | None = None
    quotas: bool | None = None
    quota_overrides: dict[str, float] = field(default_factory=dict)
    connect_delay_seconds: float | None = None
    disconnect_delay_seconds: float | None = None
    seed: int | None = None

    def validate(self) -> None:
        if self.connection_error is not None:
            if self.store is None:
                raise ControlError("--connection-error needs --store NAME")
            if self.connection_error not in CONNECTION_ERROR_CODES + ("NONE",):
                raise ControlError(
                    f"unknown ConnectionErrorCode {self.connection_error!r}; one of: "
                    + ", ".join(CONNECTION_ERROR_CODES)
                    + " (or NONE to clear)"
                )
        if self.proxy_error is not None:
            if self.store is None:
                raise ControlError("--proxy-error needs --store NAME")
            if self.proxy_error not in XKS_PROXY_FAULTS + ("NONE",):
                raise ControlError(
                    f"unknown proxy fault {self.proxy_error!r}; one of: "
                    + ", ".join(XKS_PROXY_FAULTS)
                    + " (or NONE to clear)"
                )
        for name in ("throttle_rate", "error_rate", "lost_response_rate"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ControlError(f"--{name.replace('_', '-')} must be between 0 and 1")
        for name in ("latency_ms", "connect_delay_seconds", "disconnect_delay_seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ControlError(f"--{name.replace('_', '-')} must not be negative")
        for op, rps in self.quota_overrides.items():
            if op not in KMS_DEFAULT_QUOTAS and op != "LookupEvents":  # CloudTrail's, for the evidence of use
                raise ControlError(
                    f"no KMS quota for operation {op!r}; one of: " + ", ".join(sorted(KMS_DEFAULT_QUOTAS))
                    + " (or LookupEvents, CloudTrail's)"
                )
            if rps <= 0:
                raise ControlError(f"the quota for {op} must be positive")


def apply_fault_change(settings: SandboxSettings, change: FaultChange) -> None:
    change.validate()
    faults = settings.faults
    if change.clear:
        from reconciler.sandbox.settings import Faults

        settings.faults = faults = Faults()
    if change.connection_error is not None:
        if change.connection_error == "NONE":
            faults.connection_errors.pop(change.store, None)
        else:
            faults.connection_errors[change.store] = change.connection_error
    if change.proxy_error is not None:
        if change.proxy_error == "NONE":
            faults.proxy_errors.pop(change.store, None)
        else:
            faults.proxy_errors[change.store] = change.proxy_error
    for name in ("latency_ms", "throttle_rate", "error_rate", "lost_response_rate"):
        value = getattr(change, name)
        if value is not None:
            setattr(faults, name, value)
    if change.quotas is not None:
        faults.quotas_enabled = change.quotas
    faults.quota_overrides.update(change.quota_overrides)
    if change.connect_delay_seconds is not None:
        settings.connect_delay_seconds = change.connect_delay_seconds
    if change.disconnect_delay_seconds is not None:
        settings.disconnect_delay_seconds = change.disconnect_delay_seconds
    if change.seed is not None:
        settings.seed = change.seed
        settings.rng.seed(change.seed)


def describe_settings(settings: SandboxSettings) -> dict[str, Any]:
    faults = settings.faults
    return {
        "now": settings.clock.now().isoformat().replace("+00:00", "Z"),
        "clockOffsetSeconds": settings.clock.offset_seconds,
        "connectDelaySeconds": settings.connect_delay_seconds,
        "disconnectDelaySeconds": settings.disconnect_delay_seconds,
        "faults": {
            "connectionErrors": dict(faults.connection_errors),
            "proxyErrors": dict(faults.proxy_errors),
            "latencyMs": faults.latency_ms,
            "throttleRate": faults.throttle_rate,
            "errorRate": faults.error_rate,
            "lostResponseRate": faults.lost_response_rate,
            "quotas": "on" if faults.quotas_enabled else "off",
            "quotaOverrides": dict(faults.quota_overrides),
        },
        "xksProxies": {name: f"{entry.get('scheme', 'https')}://{entry['host']}:{entry['port']}"
                       for name, entry in sorted((getattr(settings, "xks_proxies", None) or {}).items())},
        "seed": settings.seed,
        **({"roles": sorted(settings.roles)} if getattr(settings, "roles", None) else {}),
    }


@dataclass
class ClusterSeed:
    cluster_id: str | None = None
    hsm_count: int = 2
    state: str = "ACTIVE"
    trust_anchor_pem: str | None = None
    region: str = "us-east-1"
    account: str = DEFAULT_ACCOUNT


@dataclass
class EndpointServiceSeed:
    service_name: str | None = None
    private_dns_name: str | None = None
    region: str = "us-east-1"
    account: str = DEFAULT_ACCOUNT


@dataclass(frozen=True)
class Seeded:
    """What a seed verb made: the fixture's id, and whether it is new (False: it was there already)."""

    id: str
    created: bool


def _check_region(backends: Any, account: str, region: str, what: str) -> None:
    """An unknown region is a ControlError (moto would raise a KeyError deep inside)."""
    if region not in backends[account].regions:
        raise ControlError(f"region {region!r} is not one the sandbox emulates {what} in; pass --region with an AWS "
                           "region, e.g. us-east-1")


def seed_cluster(seed: ClusterSeed) -> Seeded:
    """Create the cluster; one that exists already is left as it is (its certificates, which
    stores may depend on, would change otherwise)."""
    from moto.cloudhsmv2.models import cloudhsmv2_backends

    from reconciler.sandbox import seed as seeds

    _check_region(cloudhsmv2_backends, seed.account, seed.region, "CloudHSM clusters")
    if seed.cluster_id and seeds.find_cloudhsm_cluster(seed.account, seed.region, seed.cluster_id) is not None:
        return Seeded(seed.cluster_id, False)
    return Seeded(seeds.create_cloudhsm_cluster(
        seed.account,
        seed.region,
        seed.cluster_id,
        hsm_count=seed.hsm_count,
        state=seed.state,
        trust_anchor_pem=seed.trust_anchor_pem,
    ), True)


def seed_endpoint_service(seed: EndpointServiceSeed) -> Seeded:
    """Create the service, or replace the one of that name with these settings."""
    from reconciler.sandbox import seed as seeds
    from reconciler.sandbox.vpce import endpoint_service_backends

    _check_region(endpoint_service_backends, seed.account, seed.region, "VPC endpoint services")
    existed = bool(seed.service_name) and seeds.find_vpc_endpoint_service(
        seed.account, seed.region, seed.service_name) is not None
    service = seeds.create_vpc_endpoint_service(
        seed.account, seed.region, seed.service_name, private_dns_name=seed.private_dns_name)
    return Seeded(service.service_name, not existed)


ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")


def seed_role(settings: SandboxSettings, role_arn: str, external_id: str | None) -> str:
    if not ROLE_ARN.match(role_arn or ""):
        raise ControlError(f"{role_arn!r} is not a role ARN: expected arn:aws:iam::ACCOUNT:role/NAME")
    roles = getattr(settings, "roles", None)
    if roles is None:  # settings saved before roles existed
        roles = settings.roles = {}
    existed = roles.get(role_arn, ...) == (external_id or None)
    roles[role_arn] = external_id or None
    return ("role exists: " if existed else "role created: ") + role_arn + (" (with an external id)" if external_id else "")


@dataclass
class XksProxyRegistration:
    """An XKS proxy host name and where it answers (the registry: reconciler.sandbox.xks_link)."""

    hostname: str
    host: str
    port: int
    scheme: str = "https"
    ca_pem: str | None = None

    def validate(self) -> None:
        import re

        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*",
                            self.hostname or ""):
            raise ControlError(f"{self.hostname!r} is not a host name, e.g. xks.example.com")
        if self.scheme not in ("http", "https") or not 0 < int(self.port) < 65536:
            raise ControlError("an XKS proxy registration needs scheme http or https and a port 1-65535")

    def entry(self) -> dict[str, Any]:
        return {"host": self.host, "port": int(self.port), "scheme": self.scheme, "caPem": self.ca_pem}


def register_xks_proxy(settings: SandboxSettings, registration: XksProxyRegistration) -> None:
    registration.validate()
    settings.xks_proxies[registration.hostname.lower()] = registration.entry()


def unregister_xks_proxy(settings: SandboxSettings, hostname: str, port: int | None = None) -> None:
    """Remove the host name; with ``port``, only while it still points at that port (a newer
    proxy registered under the same name since is left alone)."""
    entry = settings.xks_proxies.get(hostname.lower())
    if entry is not None and (port is None or int(entry["port"]) == int(port)):
        del settings.xks_proxies[hostname.lower()]


class SandboxControl(Protocol):
    def status(self) -> dict[str, Any]: ...
    def advance(self, seconds: float) -> str: ...
    def reset(self) -> None: ...
    def set_faults(self, change: FaultChange) -> dict[str, Any]: ...
    def seed_cluster(self, seed: ClusterSeed) -> Seeded: ...
    def seed_endpoint_service(self, seed: EndpointServiceSeed) -> Seeded: ...
    def register_xks_proxy(self, registration: XksProxyRegistration) -> None: ...
    def unregister_xks_proxy(self, hostname: str, port: int | None = None) -> None: ...
    def xks_proxies(self) -> dict[str, dict[str, Any]]: ...
    def seed_role(self, role_arn: str, external_id: str | None) -> str: ...


class LocalControl:
    """Acts on the emulator in this process through its host: the embedded sandbox's state
    directory (each verb loads it and saves it under its lock), or the memory of a server."""

    def __init__(self, host: Any) -> None:
        self.host = host

    def status(self) -> dict[str, Any]:
        with self.host.transaction(save=False) as settings:
            return describe_settings(settings)

    def advance(self, seconds: float) -> str:
        if seconds < 0:
            raise ControlError("the emulator clock only moves forward")
        with self.host.transaction() as settings:
            return _iso(settings.clock.advance(seconds))

    def reset(self) -> None:
        self.host.reset()

    def set_faults(self, change: FaultChange) -> dict[str, Any]:
        change.validate()
        with self.host.transaction() as settings:
            apply_fault_change(settings, change)
            return describe_settings(settings)

    def seed_cluster(self, seed: ClusterSeed) -> Seeded:
        with self.host.transaction():
            return seed_cluster(seed)

    def seed_endpoint_service(self, seed: EndpointServiceSeed) -> Seeded:
        with self.host.transaction():
            return seed_endpoint_service(seed)

    def seed_role(self, role_arn: str, external_id: str | None) -> str:
        """A role STS lets the sandbox's caller assume (see :mod:`reconciler.sandbox.sts`)."""
        with self.host.transaction() as settings:
            return seed_role(settings, role_arn, external_id)


    def register_xks_proxy(self, registration: XksProxyRegistration) -> None:
        registration.validate()
        with self.host.transaction() as settings:
            register_xks_proxy(settings, registration)

    def unregister_xks_proxy(self, hostname: str, port: int | None = None) -> None:
        with self.host.transaction() as settings:
            unregister_xks_proxy(settings, hostname, port)

    def xks_proxies(self) -> dict[str, dict[str, Any]]:
        with self.host.transaction(save=False) as settings:
            return {name: dict(entry) for name, entry in settings.xks_proxies.items()}


class EmbeddedControl(LocalControl):
    """Acts on the embedded sandbox's state directory."""

    def __init__(self, directory: str | None = None) -> None:
        from reconciler.sandbox.embedded import EmbeddedHost, sandbox_dir
        from reconciler.sandbox.install import install

        install()
        self.directory = sandbox_dir(directory)
        super().__init__(EmbeddedHost(self.directory))

    def status(self) -> dict[str, Any]:
        return {"sandbox": str(self.directory), **super().status()}


class RemoteControl:
    """Acts on a running ``reconciler sandbox serve`` through its control endpoint."""

    def __init__(self, endpoint_url: str) -> None:
        import urllib.parse

        try:
            parts = urllib.parse.urlsplit(endpoint_url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ControlError(f"--endpoint-url {endpoint_url!r} is not a sandbox server's URL; use http://HOST:PORT, "
                               "e.g. http://127.0.0.1:4566 (the address 'reconciler sandbox serve' prints)")
        self.base = endpoint_url.rstrip("/") + "/_reconciler"

    def _call(self, verb: str, payload: dict | None = None) -> dict[str, Any]:
        import urllib.error
        import urllib.parse
        import urllib.request

        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(
            f"{self.base}/{verb}",
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message", str(exc))
            except Exception:
                message = str(exc)
            raise ControlError(message) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            url = self.base.rsplit("/", 1)[0]
            port = urllib.parse.urlsplit(url).port
            serve = "reconciler sandbox serve" + (f" --port {port}" if port and port != 4566 else "")
            raise ControlError(f"no sandbox server answers at {url} ({reason}); start one with '{serve}'") from None

    def status(self) -> dict[str, Any]:
        return self._call("state")

    def advance(self, seconds: float) -> str:
        return self._call("advance", {"seconds": seconds})["now"]

    def reset(self) -> None:
        self._call("reset", {})

    def set_faults(self, change: FaultChange) -> dict[str, Any]:
        change.validate()
        return self._call("fault", asdict(change))

    def seed_cluster(self, seed: ClusterSeed) -> Seeded:
        return Seeded(**self._call("seed/cluster", asdict(seed)))

    def seed_endpoint_service(self, seed: EndpointServiceSeed) -> Seeded:
        return Seeded(**self._call("seed/vpc-endpoint-service", asdict(seed)))

    def register_xks_proxy(self, registration: XksProxyRegistration) -> None:
        registration.validate()
        self._call("xks-proxy/register", asdict(registration))

    def unregister_xks_proxy(self, hostname: str, port: int | None = None) -> None:
        self._call("xks-proxy/unregister", {"hostname": hostname, "port": port})

    def xks_proxies(self) -> dict[str, dict[str, Any]]:
        return self._call("xks-proxies")
    def seed_role(self, role_arn: str, external_id: str | None) -> str:
        return self._call("seed/role", {"roleArn": role_arn, "externalId": external_id})["seeded"]


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def control_for(endpoint_url: str | None, sandbox_dir: str | None) -> SandboxControl:
    return RemoteControl(endpoint_url) if endpoint_url else EmbeddedControl(sandbox_dir)
