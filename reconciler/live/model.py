"""Observed state: what KMS reports about custom key stores and their keys.

Plain frozen values, built only by :mod:`reconciler.live.reader`; the planner reads them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


# the tag a decommission's quarantine puts on each key of the store: when it began (ISO 8601, UTC)
QUARANTINE_TAG = "reconciler:quarantine-started"


@dataclass(frozen=True)
class LiveXks:
    connectivity: str
    uri_endpoint: str
    uri_path: str
    access_key_id: str | None = None
    vpc_endpoint_service_name: str | None = None
    vpc_endpoint_service_owner: str | None = None


@dataclass(frozen=True)
class LiveKey:
    key_id: str
    arn: str
    store_id: str
    origin: str
    key_state: str  # as DescribeKey reports it: Enabled, Disabled, PendingDeletion, Unavailable...
    enabled: bool
    description: str = ""
    deletion_date: datetime | None = None
    xks_key_id: str | None = None
    aliases: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def tag_dict(self) -> dict[str, str]:
        return dict(self.tags)

    @property
    def pending_deletion(self) -> bool:
        return self.key_state == "PendingDeletion"


@dataclass(frozen=True)
class LiveStore:
    id: str
    name: str
    type: str  # AWS_CLOUDHSM | EXTERNAL_KEY_STORE
    connection_state: str
    connection_error_code: str | None = None
    creation_date: datetime | None = None
    cloudhsm_cluster_id: str | None = None
    trust_anchor_certificate: str | None = None
    xks: LiveXks | None = None
    keys: tuple[LiveKey, ...] = ()


@dataclass(frozen=True)
class LiveState:
    region: str
    stores: dict[str, LiveStore] = field(default_factory=dict)  # by name
    # alias name -> key id, for every alias in the region (to detect alias conflicts)
    aliases: dict[str, str] = field(default_factory=dict)
    read_at: datetime | None = None
    # CloudTrail's evidence of use of the keys of decommissioned stores (reconciler.live.usage.
    # Evidence), read separately; not part of the digest (it is re-read, and re-planned, by apply)
    evidence: Any = None

    def to_dict(self, only: set[str] | None = None) -> dict[str, Any]:
        """Canonical JSON-able form; ``only`` restricts it to the named stores."""
        stores = [s for n, s in sorted(self.stores.items()) if only is None or n in only]
        store_keys = {k.key_id for s in stores for k in s.keys}
        return {
            "region": self.region,
            "stores": [_store_dict(s) for s in stores],
            "aliases": {
                a: k for a, k in sorted(self.aliases.items()) if only is None or k in store_keys
            },
        }

    def digest(self, only: set[str] | None = None) -> str:
        blob = json.dumps(self.to_dict(only), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()


def aware_utc(value: Any) -> datetime | None:
    """A KMS timestamp (botocore datetime, naive datetime or epoch seconds) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _store_dict(store: LiveStore) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": store.id,
        "name": store.name,
        "type": store.type,
        "connectionState": store.connection_state,
        "connectionErrorCode": store.connection_error_code,
    }
    if store.cloudhsm_cluster_id:
        out["cloudHsmClusterId"] = store.cloudhsm_cluster_id
    if store.xks:
        out["xks"] = {
            "connectivity": store.xks.connectivity,
            "uriEndpoint": store.xks.uri_endpoint,
            "uriPath": store.xks.uri_path,
            "accessKeyId": store.xks.access_key_id,
            "vpcEndpointServiceName": store.xks.vpc_endpoint_service_name,
            "vpcEndpointServiceOwner": store.xks.vpc_endpoint_service_owner,
        }
    out["keys"] = [
        {
            "keyId": k.key_id,
            "keyState": k.key_state,
            "enabled": k.enabled,
            "description": k.description,
            "deletionDate": _iso(k.deletion_date),
            "xksKeyId": k.xks_key_id,
            "aliases": list(k.aliases),
            "tags": dict(k.tags),
        }
        for k in sorted(store.keys, key=lambda k: k.key_id)
    ]
    return out
