"""What the emulator keeps, and where: custom key stores on moto's ``KmsBackend``.

All custom-key-store state is stored ON the moto ``KmsBackend`` instance
(``backend.custom_key_stores``, ``backend.sandbox_deletion_heap``, ``backend.sandbox_generation``)
and on moto's ``Key`` objects (``custom_key_store_id``, ``cloud_hsm_cluster_id``, ``xks_key_id``),
so pickling the backend persists everything. Nothing here holds a lock, a lambda or a file.

Time is read only through :func:`now` (the emulator clock of the active settings).

The rules the code cites are written up, with the API Reference sentences behind them, in
docs/kms-rules.md; what the emulator decides where the API text is silent is in docs/emulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from moto.kms.models import Key, KmsBackend

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.settings import current

# ---------------------------------------------------------------------------------------------
# Constants from the API model
# ---------------------------------------------------------------------------------------------

CLOUDHSM = "AWS_CLOUDHSM"
EXTERNAL_KEY_STORE = "EXTERNAL_KEY_STORE"
PUBLIC_ENDPOINT = "PUBLIC_ENDPOINT"
VPC_ENDPOINT_SERVICE = "VPC_ENDPOINT_SERVICE"

CONNECTED = "CONNECTED"
CONNECTING = "CONNECTING"
FAILED = "FAILED"
DISCONNECTED = "DISCONNECTED"
DISCONNECTING = "DISCONNECTING"

PENDING_DELETION = "PendingDeletion"
UNAVAILABLE = "Unavailable"

CUSTOM_KEY_STORE_ORIGINS = {CLOUDHSM: CLOUDHSM, EXTERNAL_KEY_STORE: EXTERNAL_KEY_STORE}


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------


def now() -> datetime:
    """The emulator's time (aware, UTC). The only clock this package reads."""
    return current().clock.now()


def naive_utc(moment: datetime) -> datetime:
    """moto keeps naive UTC datetimes (``Key.deletion_date``); convert an aware one."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def epoch_seconds(moment: datetime) -> float:
    """Seconds since the epoch, as KMS's JSON protocol sends timestamps."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


# ---------------------------------------------------------------------------------------------
# The store model
# ---------------------------------------------------------------------------------------------


@dataclass
class CustomKeyStore:
    """One custom key store. Secrets are kept only to compare and are never serialised out."""

    id: str
    name: str
    store_type: str
    creation_date: datetime
    connection_state: str = DISCONNECTED
    connection_error_code: str | None = None
    # when CONNECTING/DISCONNECTING ends (emulator clock)
    transition_due: datetime | None = None
    # AWS_CLOUDHSM
    cloud_hsm_cluster_id: str | None = None
    trust_anchor_certificate: str | None = None
    cluster_certificate: str | None = None  # lineage of the original cluster
    key_store_password: str | None = field(default=None, repr=False)
    # EXTERNAL_KEY_STORE
    connectivity: str | None = None
    uri_endpoint: str | None = None
    uri_path: str | None = None
    vpc_endpoint_service_name: str | None = None
    vpc_endpoint_service_owner: str | None = None
    access_key_id: str | None = None
    raw_secret_access_key: str | None = field(default=None, repr=False)
    # XksKeyId -> KMS key id (XksKeyAlreadyInUseException)
    xks_keys: dict[str, str] = field(default_factory=dict)

    @property
    def is_cloudhsm(self) -> bool:
        return self.store_type == CLOUDHSM

    @property
    def is_vpc(self) -> bool:
        return self.connectivity == VPC_ENDPOINT_SERVICE

    def to_entry(self) -> dict[str, Any]:
        """A ``CustomKeyStoresListEntry`` with the API model's member names.

        Never contains ``KeyStorePassword`` or ``RawSecretAccessKey``. Settle the store first
        (:func:`reconciler.sandbox.connection.settle_store`) so the connection state is current.
        """
        entry: dict[str, Any] = {
            "CustomKeyStoreId": self.id,
            "CustomKeyStoreName": self.name,
            "ConnectionState": self.connection_state,
            "CreationDate": epoch_seconds(self.creation_date),
            "CustomKeyStoreType": self.store_type,
        }
        if self.connection_state == FAILED and self.connection_error_code:
            entry["ConnectionErrorCode"] = self.connection_error_code
        if self.is_cloudhsm:
            entry["CloudHsmClusterId"] = self.cloud_hsm_cluster_id
            entry["TrustAnchorCertificate"] = self.trust_anchor_certificate
        else:
            proxy: dict[str, Any] = {
                "Connectivity": self.connectivity,
                "AccessKeyId": self.access_key_id,
                "UriEndpoint": self.uri_endpoint,
                "UriPath": self.uri_path,
            }
            if self.is_vpc:
                proxy["VpcEndpointServiceName"] = self.vpc_endpoint_service_name
                proxy["VpcEndpointServiceOwner"] = self.vpc_endpoint_service_owner
            entry["XksProxyConfiguration"] = proxy
        return entry


# ---------------------------------------------------------------------------------------------
# State stored on the moto backend
# ---------------------------------------------------------------------------------------------


def custom_key_stores(backend: KmsBackend) -> dict[str, CustomKeyStore]:
    """The backend's stores by id, in creation order (created lazily)."""
    stores = backend.__dict__.get("custom_key_stores")
    if stores is None:
        stores = {}
        backend.custom_key_stores = stores  # type: ignore[attr-defined]
    return stores


def generation(backend: KmsBackend) -> int:
    """Increments whenever a settle changed the backend (a purge or a transition), so a host
    that persists state can tell that a read-only request still changed something."""
    return backend.__dict__.get("sandbox_generation", 0)


def bump_generation(backend: KmsBackend) -> None:
    backend.sandbox_generation = generation(backend) + 1  # type: ignore[attr-defined]


def get_store(backend: KmsBackend, custom_key_store_id: str) -> CustomKeyStore:
    store = custom_key_stores(backend).get(custom_key_store_id)
    if store is None:
        raise exc.CustomKeyStoreNotFoundException(
            f"Custom key store '{custom_key_store_id}' does not exist in this account and Region."
        )
    return store


def new_store_id(backend: KmsBackend) -> str:
    """"cks-" + 17 hex digits, like cks-1234567890abcdef0; never one already taken."""
    rng = current().rng
    stores = custom_key_stores(backend)
    while True:
        candidate = "cks-" + format(rng.getrandbits(68), "017x")
        if candidate not in stores:
            return candidate


def keys_in_store(backend: KmsBackend, custom_key_store_id: str) -> list[Key]:
    """Every KMS key in the store, PendingDeletion included."""
    return [
        k for k in backend.keys.values() if getattr(k, "custom_key_store_id", None) == custom_key_store_id
    ]


def key_store_of(backend: KmsBackend, key: Key) -> CustomKeyStore | None:
    store_id = getattr(key, "custom_key_store_id", None)
    if not store_id:
        return None
    return custom_key_stores(backend).get(store_id)


def validation(message: str) -> exc.ValidationException:
    return exc.ValidationException(message)


def invalid_state(store: CustomKeyStore, operation: str, allowed: str) -> exc.CustomKeyStoreInvalidStateException:
    return exc.CustomKeyStoreInvalidStateException(
        f"{operation} is not valid for custom key store {store.id} in ConnectionState "
        f"{store.connection_state}; {allowed}."
    )
