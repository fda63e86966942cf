"""From loaded manifests to the planner's desired state, and the executor's secret inputs.

Non-secret references (a literal or referenced accessKeyId, the trust anchor certificate) are
resolved here, because the planner compares them with what KMS reports. Secret references (the
XKS secret access key, the kmsuser password) are not: :class:`ManifestInputs` resolves them only
when the executor runs a step that sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import UserError
from reconciler.plan.desired import (
    DesiredCloudHsm,
    DesiredKey,
    DesiredState,
    DesiredStore,
    DesiredXks,
)


class ManifestInputs:
    """Resolves values from the manifests' references when a step needs them."""

    def __init__(self, loaded: dict[str, Any], allow_outside_root: bool) -> None:
        self._loaded = loaded  # store name -> LoadedManifest
        self._allow = allow_outside_root

    def resolve(self, store: str, field_path: str) -> str:
        from reconciler.manifest.secrets import SecretError

        try:
            value = self._loaded[store].resolve(field_path, allow_outside_root=self._allow)
        except SecretError as exc:
            raise UserError(f"store {store}: {exc}") from None
        if value is None:
            raise UserError(f"store {store}: {field_path} is not set in its manifest, and this step needs it")
        return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)

    def secret_access_key(self, store: str) -> str:
        return self.resolve(store, "spec.xks.credential.secretAccessKey")

    def key_store_password(self, store: str) -> str:
        return self.resolve(store, "spec.cloudHsm.keyStorePassword")

    def trust_anchor(self, store: str) -> str:
        return self.resolve(store, "spec.cloudHsm.trustAnchorCertificate")


@dataclass
class Desired:
    state: DesiredState
    digest: str
    inputs: ManifestInputs
    skipped: list[str] = field(default_factory=list)


def _plain(inputs: ManifestInputs, store: str, value: Any, field_path: str) -> str | None:
    """A field that may be literal or a reference (accessKeyId, trust anchor): resolved now."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return inputs.resolve(store, field_path)


def build_desired(loaded, region: str, paths: list[str], *, allow_outside_root: bool = False) -> Desired:
    from reconciler.manifest.loader import digest

    chosen, skipped = [], []
    for entry in loaded.manifests:
        spec_region = entry.model.spec.region
        if spec_region and spec_region != region:
            skipped.append(f"{entry.model.metadata.name} is for region {spec_region}, not {region}: "
                           f"left out of this run (plan it with --region {spec_region})")
            continue
        chosen.append(entry)
    by_name = {e.model.metadata.name: e for e in chosen}
    inputs = ManifestInputs(by_name, allow_outside_root)
    stores = []
    for entry in chosen:
        m = entry.model
        spec = m.spec
        name = m.metadata.name
        present = spec.state == "present"
        xks = cloudhsm = None
        if spec.xks is not None and present:
            cred = spec.xks.credential
            xks = DesiredXks(
                connectivity=spec.xks.connectivity,
                uri_endpoint=spec.xks.uriEndpoint,
                uri_path=spec.xks.uriPath,
                access_key_id=_plain(inputs, name, cred.accessKeyId if cred else None,
                                     "spec.xks.credential.accessKeyId"),
                vpc_endpoint_service_name=spec.xks.vpcEndpointServiceName,
                vpc_endpoint_service_owner=spec.xks.vpcEndpointServiceOwner,
            )
        if spec.cloudHsm is not None and present:
            cloudhsm = DesiredCloudHsm(
                cluster_id=spec.cloudHsm.clusterId,
                trust_anchor_certificate=_plain(inputs, name, spec.cloudHsm.trustAnchorCertificate,
                                                "spec.cloudHsm.trustAnchorCertificate"),
            )
        identity = []
        if not present and spec.cloudHsm is not None and spec.cloudHsm.clusterId:
            identity.append(("cloudHsm.clusterId", spec.cloudHsm.clusterId))
        if not present and spec.xks is not None:
            if spec.xks.uriEndpoint:
                identity.append(("xks.uriEndpoint", spec.xks.uriEndpoint))
            if spec.xks.vpcEndpointServiceName:
                identity.append(("xks.vpcEndpointServiceName", spec.xks.vpcEndpointServiceName))
        keys = tuple(
            DesiredKey(alias=k.alias, xks_key_id=k.xksKeyId, description=k.description, enabled=k.enabled,
                       tags=tuple(sorted(k.tags.items())))
            for k in spec.keys
        )
        stores.append(DesiredStore(
            name=name, type=spec.type, state=spec.state, connection=spec.connection,
            pending_window_days=spec.deletion.pendingWindowDays,
            quarantine_days=spec.deletion.quarantineDays,
            refuse_if_used_within_days=spec.deletion.refuseIfUsedWithinDays, xks=xks, cloudhsm=cloudhsm, keys=keys,
            source=entry.source, account=spec.account, identity=tuple(identity),
        ))
    return Desired(state=DesiredState(region=region, stores=tuple(stores)), digest=digest(chosen),
                   inputs=inputs, skipped=skipped)
