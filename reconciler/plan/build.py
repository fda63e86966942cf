"""From loaded manifests to the planner's desired state, and the executor's secret inputs.

Non-secret references (a literal or referenced accessKeyId, the trust anchor certificate) are
resolved here, because the planner compares them with what KMS reports. Secret references (the
XKS secret access key, the kmsuser password) are not: :class:`ManifestInputs` resolves them only
when the executor runs a step that sends them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.errors import UserError
from reconciler.plan.desired import (
    DesiredCloudHsm,
    DesiredKey,
    DesiredState,
    DesiredStore,
    DesiredXks,
)


def _value(v: Any) -> Any:
    return getattr(v, "value", v)


def manifests_root(paths: list[str]) -> Path:
    """The directory {fromFile} references must stay inside: the common directory of the paths."""
    dirs = [Path(p).resolve() if Path(p).is_dir() else Path(p).resolve().parent for p in paths]
    return Path(os.path.commonpath([str(d) for d in dirs])) if dirs else Path.cwd()


class ManifestInputs:
    """Resolves secrets from the manifests' references, when a step needs them."""

    def __init__(self, loaded: dict[str, Any], root: Path, allow_outside_root: bool) -> None:
        self._loaded = loaded  # store name -> LoadedManifest
        self._root = root
        self._allow = allow_outside_root

    def _resolve(self, store: str, ref: Any, what: str) -> str:
        from reconciler.manifest.secrets import SecretError, resolve_secret

        if ref is None:
            raise UserError(f"store {store}: {what} is not set in its manifest, and this step needs it")
        entry = self._loaded[store]
        try:
            value = resolve_secret(ref, manifest_dir=entry.manifest_dir, root=self._root,
                                   allow_outside_root=self._allow)
        except SecretError as exc:
            raise UserError(f"store {store}: {exc}") from None
        return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)

    def secret_access_key(self, store: str) -> str:
        spec = self._loaded[store].model.spec
        ref = spec.xks.credential.secretAccessKey if spec.xks and spec.xks.credential else None
        return self._resolve(store, ref, "spec.xks.credential.secretAccessKey")

    def key_store_password(self, store: str) -> str:
        spec = self._loaded[store].model.spec
        return self._resolve(store, spec.cloudHsm.keyStorePassword if spec.cloudHsm else None,
                             "spec.cloudHsm.keyStorePassword")

    def trust_anchor(self, store: str) -> str:
        spec = self._loaded[store].model.spec
        return self._resolve(store, spec.cloudHsm.trustAnchorCertificate if spec.cloudHsm else None,
                             "spec.cloudHsm.trustAnchorCertificate")


@dataclass
class Desired:
    state: DesiredState
    digest: str
    inputs: ManifestInputs
    skipped: list[str] = field(default_factory=list)


def _plain(inputs: ManifestInputs, store: str, value: Any, what: str) -> str | None:
    """A field that may be literal or a reference (accessKeyId, trust anchor)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return inputs._resolve(store, value, what)


def build_desired(loaded, region: str, paths: list[str], *, allow_outside_root: bool = False) -> Desired:
    from reconciler.manifest.loader import digest

    root = manifests_root(paths)
    chosen, skipped = [], []
    for entry in loaded.manifests:
        spec_region = entry.model.spec.region
        if spec_region and spec_region != region:
            skipped.append(f"{entry.model.metadata.name} is for region {spec_region}, not {region}: "
                           f"left out of this run (plan it with --region {spec_region})")
            continue
        chosen.append(entry)
    by_name = {e.model.metadata.name: e for e in chosen}
    inputs = ManifestInputs(by_name, root, allow_outside_root)
    stores = []
    for entry in chosen:
        m = entry.model
        spec = m.spec
        name = m.metadata.name
        present = _value(spec.state) == "present"
        xks = cloudhsm = None
        if spec.xks is not None and present:
            cred = spec.xks.credential
            xks = DesiredXks(
                connectivity=_value(spec.xks.connectivity),
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
        keys = tuple(
            DesiredKey(alias=k.alias, xks_key_id=k.xksKeyId, description=k.description, enabled=k.enabled,
                       tags=tuple(sorted(k.tags.items())))
            for k in spec.keys
        )
        stores.append(DesiredStore(
            name=name, type=_value(spec.type), state=_value(spec.state), connection=_value(spec.connection),
            pending_window_days=spec.deletion.pendingWindowDays, xks=xks, cloudhsm=cloudhsm, keys=keys,
            source=f"{entry.path}:{entry.line}", account=spec.account,
        ))
    return Desired(state=DesiredState(region=region, stores=tuple(stores)), digest=digest(chosen),
                   inputs=inputs, skipped=skipped)
