"""Desired state as the planner sees it: plain values, no secrets.

Built from the loaded manifests by :func:`reconciler.plan.build.desired_from_manifests`; secrets
appear only as the fact that a reference exists (the executor resolves them when a step needs
them).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DesiredKey:
    alias: str | None
    xks_key_id: str | None = None
    description: str = ""
    enabled: bool = True
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def ident(self) -> str:
        """How the key is named in step ids and output: its XksKeyId, else its alias."""
        return self.xks_key_id or self.alias or "?"


@dataclass(frozen=True)
class DesiredXks:
    connectivity: str
    uri_endpoint: str
    uri_path: str
    access_key_id: str | None
    vpc_endpoint_service_name: str | None = None
    vpc_endpoint_service_owner: str | None = None


@dataclass(frozen=True)
class DesiredCloudHsm:
    cluster_id: str
    trust_anchor_certificate: str | None


@dataclass(frozen=True)
class DesiredStore:
    name: str
    type: str  # AWS_CLOUDHSM | EXTERNAL_KEY_STORE
    state: str = "present"  # present | absent
    connection: str = "connected"  # connected | disconnected
    pending_window_days: int = 30
    quarantine_days: int = 0  # a decommission disconnects, then schedules deletion this many days later
    refuse_if_used_within_days: int = 30  # 0: no check of CloudTrail's evidence of use
    xks: DesiredXks | None = None
    cloudhsm: DesiredCloudHsm | None = None
    keys: tuple[DesiredKey, ...] = ()
    source: str = ""  # FILE:LINE of the manifest, for messages
    account: str | None = None
    # for a decommission: the identifying settings the manifest gives (e.g. ("cloudHsm.clusterId",
    # "cluster-...")), which the live store must have before anything of it is destroyed
    identity: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class DesiredState:
    region: str
    stores: tuple[DesiredStore, ...] = field(default_factory=tuple)

    def names(self) -> set[str]:
        return {s.name for s in self.stores}
