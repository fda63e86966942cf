"""Rules across manifests: what KMS requires to be unique per account and region.

Manifests are grouped by ``(spec.account, region)``, where the region is ``spec.region`` or the
default region (``None`` when unknown: those manifests form one group, as do manifests without
an account). Within a group:

* store names are unique (every manifest, ``state: absent`` ones included);
* among stores that are ``present`` (a decommissioned store's settings are not created again):
  XKS endpoint + path is unique (XksProxyUriInUseException); a PUBLIC store does not share its
  endpoint with a VPC store and every VPC store has its own endpoint
  (XksProxyUriEndpointInUseException); each VPC endpoint service serves one store
  (XksProxyVpcEndpointServiceInUseException); each CloudHSM cluster serves one store
  (CloudHsmClusterInUseException); an alias names one key.

Each duplicate is reported at its second occurrence, naming the first's FILE:LINE. Duplicates
inside one store (xksKeyId, alias) are checked by the model itself.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.manifest.model import VPC, XKS, CLOUDHSM

if TYPE_CHECKING:
    from reconciler.manifest.loader import LoadedManifest, Problem

GroupKey = tuple[str | None, str | None]


def group_key(manifest: LoadedManifest, default_region: str | None = None) -> GroupKey:
    """``(account, region)`` of a manifest; either may be None (unknown)."""
    spec = manifest.model.spec
    return spec.account, spec.region or manifest.region or default_region


def _describe_group(key: GroupKey) -> str:
    account, region = key
    return f"account {account or '(any)'}, region {region or '(default)'}"


class _Seen:
    """First occurrences of values in one group, reporting later ones."""

    def __init__(self, group: GroupKey, problems: list[Problem]) -> None:
        self.group = group
        self.problems = problems
        self.first: dict[tuple[str, object], tuple[LoadedManifest, str]] = {}
        # endpoint host -> the present XKS stores using it, with their connectivity
        self.endpoints: dict[str, list[tuple[LoadedManifest, str]]] = defaultdict(list)

    def add(self, rule: str, value: object, manifest: LoadedManifest, field: str, what: str, why: str) -> bool:
        """Record ``value`` under ``rule``; report it if it was seen before. True if it was new."""
        previous = self.first.get((rule, value))
        if previous is None:
            self.first[(rule, value)] = (manifest, field)
            return True
        first, first_field = previous
        line, _ = first.locate(first_field)
        self.problems.append(manifest.problem(
            field, f"{what} is already used by store {first.name!r} at {first.path}:{line} "
                   f"({_describe_group(self.group)}); {why}"))
        return False


def check_manifests(manifests: Sequence[LoadedManifest], default_region: str | None = None) -> list[Problem]:
    """Every cross-manifest problem, in load order."""
    problems: list[Problem] = []
    groups: dict[GroupKey, _Seen] = {}
    for manifest in manifests:
        key = group_key(manifest, default_region)
        seen = groups.setdefault(key, _Seen(key, problems))
        _check_manifest(manifest, seen)
    return problems


def _check_manifest(manifest: LoadedManifest, seen: _Seen) -> None:
    spec = manifest.model.spec
    seen.add("name", manifest.name, manifest, "metadata.name", f"store name {manifest.name!r}",
             "a store name is unique per account and region")
    if spec.state == "absent":
        return
    if spec.type == XKS and spec.xks is not None:
        _check_xks(manifest, seen)
    if spec.type == CLOUDHSM and spec.cloudHsm is not None and spec.cloudHsm.clusterId:
        seen.add("cluster", spec.cloudHsm.clusterId, manifest, "spec.cloudHsm.clusterId",
                 f"CloudHSM cluster {spec.cloudHsm.clusterId!r}",
                 "a cluster can back only one key store (CloudHsmClusterInUseException)")
    for i, key_spec in enumerate(spec.keys):
        if key_spec.alias:
            seen.add("alias", key_spec.alias, manifest, f"spec.keys[{i}].alias", f"alias {key_spec.alias!r}",
                     "an alias names one key per account and region")


def _check_xks(manifest: LoadedManifest, seen: _Seen) -> None:
    xks = manifest.model.spec.xks
    assert xks is not None
    if xks.vpcEndpointServiceName and xks.connectivity == VPC:
        seen.add("vpce", xks.vpcEndpointServiceName, manifest, "spec.xks.vpcEndpointServiceName",
                 f"VPC endpoint service {xks.vpcEndpointServiceName!r}",
                 "each external key store needs its own VPC endpoint service "
                 "(XksProxyVpcEndpointServiceInUseException)")
    if not xks.uriEndpoint:
        return
    host = xks.uriEndpoint.lower()
    if xks.uriPath:
        fresh = seen.add("uri", (host, xks.uriPath), manifest, "spec.xks.uriPath",
                         f"endpoint {xks.uriEndpoint} with path {xks.uriPath}",
                         "uriEndpoint + uriPath must be unique (XksProxyUriInUseException)")
        if not fresh:
            seen.endpoints[host].append((manifest, xks.connectivity or ""))
            return
    for other, connectivity in seen.endpoints[host]:
        if VPC in (connectivity, xks.connectivity):
            line, _ = other.locate("spec.xks.uriEndpoint")
            why = ("every VPC_ENDPOINT_SERVICE store needs its own private DNS name"
                   if connectivity == xks.connectivity == VPC else
                   "a PUBLIC_ENDPOINT store cannot share its endpoint with a VPC_ENDPOINT_SERVICE store")
            seen.problems.append(manifest.problem(
                "spec.xks.uriEndpoint",
                f"endpoint {xks.uriEndpoint} is already used by store {other.name!r} ({connectivity}) at "
                f"{other.path}:{line} ({_describe_group(seen.group)}); {why} (XksProxyUriEndpointInUseException)"))
            break
    seen.endpoints[host].append((manifest, xks.connectivity or ""))


__all__ = ["check_manifests", "group_key"]
