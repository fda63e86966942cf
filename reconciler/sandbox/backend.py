"""KMS custom key store rules, applied to a moto ``KmsBackend``.

Every rule cites the KMS API Reference text shipped in botocore's KMS service model (see
``/work/shared/reference/kms-custom-key-stores.md``). The wire protocol lives in
:mod:`reconciler.sandbox.responses`; this module knows nothing about JSON or HTTP.

State: all custom-key-store state is stored ON the moto ``KmsBackend`` instance
(``backend.custom_key_stores``, ``backend.sandbox_deletion_heap``, ``backend.sandbox_generation``)
and on moto's ``Key`` objects (``custom_key_store_id``, ``cloud_hsm_cluster_id``, ``xks_key_id``),
so pickling the backend persists everything. Nothing here holds a lock, a lambda or a file.

Time: read only from ``settings.current().clock``. Transitions (CONNECTING -> CONNECTED/FAILED,
DISCONNECTING -> DISCONNECTED, purge of keys past their DeletionDate) are evaluated lazily from
stored timestamps by :func:`settle`, which the wire layer calls at the start of every request.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence, TypeVar

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

# UpdateCustomKeyStore doc: "you can update the CustomKeyStoreName of an AWS CloudHSM key store
# when it is in the CONNECTED or DISCONNECTED state" / "you can update the CustomKeyStoreName,
# XksProxyAuthenticationCredential, and XksProxyUriPath of an external key store when it is in
# the CONNECTED or DISCONNECTED state". Every other property needs DISCONNECTED.
UPDATABLE_WHILE_CONNECTED = {
    CLOUDHSM: frozenset({"NewCustomKeyStoreName"}),
    EXTERNAL_KEY_STORE: frozenset(
        {"NewCustomKeyStoreName", "XksProxyAuthenticationCredential", "XksProxyUriPath"}
    ),
}
CLOUDHSM_ONLY_FIELDS = ("KeyStorePassword", "CloudHsmClusterId", "TrustAnchorCertificate")
XKS_ONLY_FIELDS = (
    "XksProxyConnectivity",
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "XksProxyVpcEndpointServiceOwner",
    "XksProxyAuthenticationCredential",
)

MIN_DELETION_WINDOW_DAYS = 7
MAX_DELETION_WINDOW_DAYS = 30
DEFAULT_DELETION_WINDOW_DAYS = 30


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

        Never contains ``KeyStorePassword`` or ``RawSecretAccessKey``. Call :func:`settle`
        first so the connection state is current.
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
    """Increments whenever :func:`settle` changed the backend (a purge or a transition), so a
    host that persists state can tell that a read-only request still changed something."""
    return backend.__dict__.get("sandbox_generation", 0)


def _bump_generation(backend: KmsBackend) -> None:
    backend.sandbox_generation = generation(backend) + 1  # type: ignore[attr-defined]


def _deletion_heap(backend: KmsBackend) -> list[tuple[datetime, str]]:
    heap = backend.__dict__.get("sandbox_deletion_heap")
    if heap is None:
        # rebuilt from the keys (a backend pickled before the sandbox was installed)
        heap = [
            (naive_utc(k.deletion_date), k.id)
            for k in backend.keys.values()
            if k.key_state == PENDING_DELETION and k.deletion_date is not None
        ]
        heapq.heapify(heap)
        backend.sandbox_deletion_heap = heap  # type: ignore[attr-defined]
    return heap


def get_store(backend: KmsBackend, custom_key_store_id: str) -> CustomKeyStore:
    store = custom_key_stores(backend).get(custom_key_store_id)
    if store is None:
        raise exc.CustomKeyStoreNotFoundException(
            f"Custom key store '{custom_key_store_id}' does not exist in this account and Region."
        )
    return store


def _new_store_id(backend: KmsBackend) -> str:
    # "cks-" + 17 hex digits, like cks-1234567890abcdef0
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


# ---------------------------------------------------------------------------------------------
# Backing resources: CloudHSM clusters (moto cloudhsmv2) and VPC endpoint services (sandbox.vpce)
# ---------------------------------------------------------------------------------------------


def find_cluster(account_id: str, region: str, cluster_id: str) -> Any | None:
    from moto.cloudhsmv2.models import cloudhsmv2_backends

    try:
        return cloudhsmv2_backends[account_id][region].clusters.get(cluster_id)
    except KeyError:
        return None


def active_hsms(cluster: Any) -> list[dict[str, Any]]:
    return [h for h in (cluster.hsms or []) if h.get("State", "ACTIVE") == "ACTIVE"]


def _active_hsm_zones(cluster: Any) -> set[str]:
    return {h.get("AvailabilityZone", h.get("HsmId", "")) for h in active_hsms(cluster)}


def cluster_configuration_problem(cluster: Any, *, min_active_hsms: int) -> str | None:
    """CloudHsmClusterInvalidConfigurationException: "The CloudHSM cluster must be configured
    with private subnets in at least two different Availability Zones" and "For the
    CreateCustomKeyStore, UpdateCustomKeyStore, and CreateKey operations, the CloudHSM cluster
    must have at least two active HSMs, each in a different Availability Zone. For the
    ConnectCustomKeyStore operation, the CloudHSM must contain at least one active HSM."
    """
    if len(set((cluster.subnet_mapping or {}).keys())) < 2:
        return (
            f"CloudHSM cluster {cluster.cluster_id} must be configured with private subnets in "
            "at least two different Availability Zones in the Region."
        )
    if min_active_hsms >= 2 and len(_active_hsm_zones(cluster)) < 2:
        return (
            f"CloudHSM cluster {cluster.cluster_id} must have at least two active HSMs, each in "
            "a different Availability Zone."
        )
    if len(active_hsms(cluster)) < min_active_hsms:
        return f"CloudHSM cluster {cluster.cluster_id} must contain at least one active HSM."
    return None


def cluster_certificate(cluster: Any) -> str | None:
    return (getattr(cluster, "certificates", None) or {}).get("ClusterCertificate") or None


def _normalise_pem(text: str | None) -> str:
    return "\n".join(line.strip() for line in (text or "").strip().splitlines() if line.strip())


def find_vpc_endpoint_service(owner_account_id: str, region: str, service_name: str) -> Any | None:
    from reconciler.sandbox.vpce import endpoint_service_backends

    try:
        configurations = endpoint_service_backends[owner_account_id][region].configurations
    except KeyError:
        return None
    for configuration in configurations.values():
        if configuration.service_name == service_name:
            return configuration
    return None


def kms_service_principal(region: str) -> str:
    return f"cks.kms.{region}.amazonaws.com"


def vpc_service_visible_to_kms(configuration: Any, region: str) -> bool:
    """XksProxyVpcEndpointServiceNotFoundException: "confirm that the Allow principals list for the
    VPC endpoint service includes the KMS service principal for the Region"."""
    principals = set(configuration.principals)
    return "*" in principals or kms_service_principal(region) in principals


def vpc_service_configuration_problem(
    configuration: Any, uri_endpoint: str | None
) -> str | None:
    """The requirements listed under XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION
    (CustomKeyStoresListEntry.ConnectionErrorCode) and the XksProxyUriEndpoint doc ("specify
    https:// followed by the private DNS name of the VPC endpoint service")."""
    name = configuration.service_name
    if configuration.service_type != "Interface" or configuration.gateway_load_balancer_arns:
        return f"VPC endpoint service {name} must be an endpoint service for interface endpoints."
    zones = set(configuration.availability_zones)
    if not configuration.network_load_balancer_arns or len(zones) < 2:
        return (
            f"VPC endpoint service {name} must have a network load balancer connected to at "
            "least two subnets, each in a different Availability Zone."
        )
    if configuration.acceptance_required:
        return f"VPC endpoint service {name} must not require acceptance of connection requests."
    private_dns_name = configuration.private_dns_name
    if not private_dns_name:
        return f"VPC endpoint service {name} must have a private DNS name."
    if configuration.private_dns_state != "verified":
        return (
            f"The domain of the private DNS name of VPC endpoint service {name} must have a "
            "verification status of verified."
        )
    if uri_endpoint is not None and uri_endpoint.lower() != f"https://{private_dns_name}".lower():
        return (
            "The XksProxyUriEndpoint of an external key store with VPC_ENDPOINT_SERVICE "
            f"connectivity must be https:// followed by the private DNS name of VPC endpoint "
            f"service {name}."
        )
    return None


# ---------------------------------------------------------------------------------------------
# Lazy transitions
# ---------------------------------------------------------------------------------------------


def _connection_outcome(backend: KmsBackend, store: CustomKeyStore) -> str | None:
    """The ConnectionErrorCode a finished connection attempt ends with, or None (CONNECTED)."""
    faults = current().faults
    code = faults.connection_errors.get(store.name)
    if code:
        return code
    if store.is_cloudhsm:
        cluster = find_cluster(backend.account_id, backend.region_name, store.cloud_hsm_cluster_id or "")
        if cluster is None:
            return "CLUSTER_NOT_FOUND"
        if not active_hsms(cluster):
            return "INSUFFICIENT_CLOUDHSM_HSMS"
        return None
    if store.is_vpc:
        owner = store.vpc_endpoint_service_owner or backend.account_id
        configuration = find_vpc_endpoint_service(
            owner, backend.region_name, store.vpc_endpoint_service_name or ""
        )
        if configuration is None or not vpc_service_visible_to_kms(configuration, backend.region_name):
            return "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND"
        if vpc_service_configuration_problem(configuration, store.uri_endpoint):
            return "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"
    return None


def _settle_store(backend: KmsBackend, store: CustomKeyStore, at: datetime) -> bool:
    due = store.transition_due
    if due is None or at < due:
        return False
    if store.connection_state == CONNECTING:
        code = _connection_outcome(backend, store)
        store.connection_state = FAILED if code else CONNECTED
        store.connection_error_code = code
    elif store.connection_state == DISCONNECTING:
        store.connection_state = DISCONNECTED
        store.connection_error_code = None
    store.transition_due = None
    return True


def settle_store(backend: KmsBackend, store: CustomKeyStore) -> CustomKeyStore:
    """Bring one store's connection state up to the emulator clock."""
    if _settle_store(backend, store, now()):
        _bump_generation(backend)
    return store


def purge_expired_keys(backend: KmsBackend, at: datetime | None = None) -> list[str]:
    """Delete every key whose DeletionDate has passed, with its aliases and tags.

    ScheduleKeyDeletion doc: "After the waiting period ends, KMS deletes the KMS key, its key
    material, and all KMS data associated with it, including all aliases that refer to it."
    Applies to every key in the backend, moto's ordinary keys included.
    """
    heap = _deletion_heap(backend)
    if not heap:
        return []
    limit = naive_utc(at or now())
    purged: list[str] = []
    while heap and heap[0][0] <= limit:
        due, key_id = heapq.heappop(heap)
        key = backend.keys.get(key_id)
        if key is None or key.key_state != PENDING_DELETION or key.deletion_date is None:
            continue  # cancelled, or already gone
        if naive_utc(key.deletion_date) != due:
            continue  # rescheduled: a newer heap entry stands for it
        _remove_key(backend, key)
        purged.append(key_id)
    return purged


def _remove_key(backend: KmsBackend, key: Key) -> None:
    store_id = getattr(key, "custom_key_store_id", None)
    xks_key_id = getattr(key, "xks_key_id", None)
    if store_id and xks_key_id:
        store = custom_key_stores(backend).get(store_id)
        if store is not None and store.xks_keys.get(xks_key_id) == key.id:
            del store.xks_keys[xks_key_id]
    key.aliases.clear()
    backend.delete_key(key.id)  # moto: removes the key and its tags


def settle(backend: KmsBackend) -> bool:
    """Apply everything the clock has made due: the purge of keys past their DeletionDate and
    the end of CONNECTING/DISCONNECTING. Returns True when something changed."""
    at = now()
    changed = bool(purge_expired_keys(backend, at))
    for store in custom_key_stores(backend).values():
        changed = _settle_store(backend, store, at) or changed
    if changed:
        _bump_generation(backend)
    return changed


# ---------------------------------------------------------------------------------------------
# Uniqueness checks
# ---------------------------------------------------------------------------------------------


def _others(backend: KmsBackend, exclude: CustomKeyStore | None) -> Iterable[CustomKeyStore]:
    return (s for s in custom_key_stores(backend).values() if s is not exclude)


def _check_name_free(backend: KmsBackend, name: str, exclude: CustomKeyStore | None = None) -> None:
    # CustomKeyStoreNameInUseException: "the specified custom key store name is already assigned
    # to another custom key store in the account"
    for other in _others(backend, exclude):
        if other.name == name:
            raise exc.CustomKeyStoreNameInUseException(
                f"Custom key store name '{name}' is already in use in this account and Region."
            )


def _check_xks_uri_free(
    backend: KmsBackend,
    *,
    connectivity: str,
    uri_endpoint: str,
    uri_path: str,
    exclude: CustomKeyStore | None = None,
) -> None:
    """XksProxyUriEndpoint doc, "Uniqueness requirements": the combined endpoint and path are
    unique (XksProxyUriInUseException); a PUBLIC_ENDPOINT store cannot use the endpoint of a
    VPC_ENDPOINT_SERVICE store, and each VPC store has its own private DNS name
    (XksProxyUriEndpointInUseException)."""
    endpoint = uri_endpoint.lower()
    others = [s for s in _others(backend, exclude) if s.store_type == EXTERNAL_KEY_STORE]
    for other in others:
        if (other.uri_endpoint or "").lower() == endpoint and other.uri_path == uri_path:
            raise exc.XksProxyUriInUseException(
                f"The XKS proxy URI {uri_endpoint}{uri_path} is already used by external key "
                f"store {other.id}."
            )
    for other in others:
        if (other.uri_endpoint or "").lower() != endpoint:
            continue
        if connectivity == VPC_ENDPOINT_SERVICE or other.connectivity == VPC_ENDPOINT_SERVICE:
            raise exc.XksProxyUriEndpointInUseException(
                f"The XKS proxy URI endpoint {uri_endpoint} is already used by external key "
                f"store {other.id}; an external key store with VPC_ENDPOINT_SERVICE "
                "connectivity needs its own private DNS name, and a PUBLIC_ENDPOINT store "
                "cannot share an endpoint with one."
            )


def _check_vpc_service(
    backend: KmsBackend,
    *,
    service_name: str,
    owner: str,
    uri_endpoint: str,
    exclude: CustomKeyStore | None = None,
) -> None:
    """XksProxyVpcEndpointServiceInUseException ("Each external key store in a Region must use a
    different Amazon VPC endpoint service"), ...NotFoundException, ...InvalidConfigurationException."""
    for other in _others(backend, exclude):
        if (
            other.is_vpc
            and other.vpc_endpoint_service_name == service_name
            and (other.vpc_endpoint_service_owner or backend.account_id) == owner
        ):
            raise exc.XksProxyVpcEndpointServiceInUseException(
                f"VPC endpoint service {service_name} is already associated with external key "
                f"store {other.id}."
            )
    configuration = find_vpc_endpoint_service(owner, backend.region_name, service_name)
    if configuration is None or not vpc_service_visible_to_kms(configuration, backend.region_name):
        raise exc.XksProxyVpcEndpointServiceNotFoundException(
            f"KMS could not find VPC endpoint service {service_name} owned by account {owner}. "
            "Verify the name and that its Allow principals list includes "
            f"{kms_service_principal(backend.region_name)}."
        )
    problem = vpc_service_configuration_problem(configuration, uri_endpoint)
    if problem:
        raise exc.XksProxyVpcEndpointServiceInvalidConfigurationException(problem)


def _raise_proxy_fault(*store_names: str | None) -> None:
    """For PUBLIC_ENDPOINT stores KMS contacts the proxy during Create/Update (XksProxyUriEndpoint
    doc: "KMS connects to the external key store proxy while creating the custom key store")."""
    proxy_errors = current().faults.proxy_errors
    for name in store_names:
        if name and name in proxy_errors:
            raise exc.exception_class(proxy_errors[name])()


def _check_cloudhsm_cluster_for_new_store(
    backend: KmsBackend, cluster_id: str, trust_anchor: str
) -> Any:
    cluster = find_cluster(backend.account_id, backend.region_name, cluster_id)
    if cluster is None:
        raise exc.CloudHsmClusterNotFoundException(
            f"KMS cannot find the CloudHSM cluster with cluster ID {cluster_id}."
        )
    certificate = cluster_certificate(cluster)
    for other in _others(backend, None):
        if not other.is_cloudhsm:
            continue
        other_cluster = find_cluster(backend.account_id, backend.region_name, other.cloud_hsm_cluster_id or "")
        other_certificate = (
            cluster_certificate(other_cluster) if other_cluster is not None else other.cluster_certificate
        )
        if other.cloud_hsm_cluster_id == cluster_id or (certificate and certificate == other_certificate):
            raise exc.CloudHsmClusterInUseException(
                f"CloudHSM cluster {cluster_id} is already associated with custom key store "
                f"{other.id}, or shares a backup history with its cluster."
            )
    if cluster.state != "ACTIVE":
        raise exc.CloudHsmClusterNotActiveException(
            f"CloudHSM cluster {cluster_id} is {cluster.state}, not ACTIVE."
        )
    if _normalise_pem(getattr(cluster, "trust_anchor", None)) != _normalise_pem(trust_anchor):
        raise exc.IncorrectTrustAnchorException(
            f"The trust anchor certificate is not the trust anchor certificate of CloudHSM "
            f"cluster {cluster_id}."
        )
    problem = cluster_configuration_problem(cluster, min_active_hsms=2)
    if problem:
        raise exc.CloudHsmClusterInvalidConfigurationException(problem)
    return cluster


# ---------------------------------------------------------------------------------------------
# The six operations
# ---------------------------------------------------------------------------------------------


def _validation(message: str) -> exc.ValidationException:
    return exc.ValidationException(message)


def create_custom_key_store(
    backend: KmsBackend,
    *,
    custom_key_store_name: str,
    custom_key_store_type: str | None = None,
    cloud_hsm_cluster_id: str | None = None,
    trust_anchor_certificate: str | None = None,
    key_store_password: str | None = None,
    xks_proxy_connectivity: str | None = None,
    xks_proxy_uri_endpoint: str | None = None,
    xks_proxy_uri_path: str | None = None,
    xks_proxy_vpc_endpoint_service_name: str | None = None,
    xks_proxy_vpc_endpoint_service_owner: str | None = None,
    xks_proxy_access_key_id: str | None = None,
    xks_proxy_raw_secret_access_key: str | None = None,
) -> CustomKeyStore:
    """CreateCustomKeyStore. Field lengths/patterns are checked by the wire layer."""
    store_type = custom_key_store_type or CLOUDHSM
    given_hsm = {
        "CloudHsmClusterId": cloud_hsm_cluster_id,
        "TrustAnchorCertificate": trust_anchor_certificate,
        "KeyStorePassword": key_store_password,
    }
    credential_given = xks_proxy_access_key_id is not None or xks_proxy_raw_secret_access_key is not None
    given_xks = {
        "XksProxyConnectivity": xks_proxy_connectivity,
        "XksProxyUriEndpoint": xks_proxy_uri_endpoint,
        "XksProxyUriPath": xks_proxy_uri_path,
        "XksProxyVpcEndpointServiceName": xks_proxy_vpc_endpoint_service_name,
        "XksProxyVpcEndpointServiceOwner": xks_proxy_vpc_endpoint_service_owner,
        "XksProxyAuthenticationCredential": True if credential_given else None,
    }
    # CreateCustomKeyStore doc: "To create an CloudHSM key store, specify the CustomKeyStoreName,
    # CloudHsmClusterId, KeyStorePassword, and TrustAnchorCertificate." / "To create an external
    # key store, specify the CustomKeyStoreName and a CustomKeyStoreType of EXTERNAL_KEY_STORE.
    # Also, specify values for XksProxyConnectivity, XksProxyAuthenticationCredential,
    # XksProxyUriEndpoint, and XksProxyUriPath. If your XksProxyConnectivity value is
    # VPC_ENDPOINT_SERVICE, specify the XksProxyVpcEndpointServiceName parameter."
    if store_type == CLOUDHSM:
        wrong = [n for n, v in given_xks.items() if v is not None]
        if wrong:
            raise _validation(
                f"{', '.join(wrong)} is valid only for custom key stores with a "
                "CustomKeyStoreType of EXTERNAL_KEY_STORE."
            )
        missing = [n for n, v in given_hsm.items() if v is None]
        if missing:
            raise _validation(
                f"{', '.join(missing)} is required for custom key stores with a "
                "CustomKeyStoreType of AWS_CLOUDHSM."
            )
    elif store_type == EXTERNAL_KEY_STORE:
        wrong = [n for n, v in given_hsm.items() if v is not None]
        if wrong:
            raise _validation(
                f"{', '.join(wrong)} is valid only for custom key stores with a "
                "CustomKeyStoreType of AWS_CLOUDHSM."
            )
        required = ("XksProxyConnectivity", "XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyAuthenticationCredential")
        missing = [n for n in required if given_xks[n] is None]
        if missing:
            raise _validation(
                f"{', '.join(missing)} is required for custom key stores with a "
                "CustomKeyStoreType of EXTERNAL_KEY_STORE."
            )
        if xks_proxy_access_key_id is None or xks_proxy_raw_secret_access_key is None:
            raise _validation(
                "XksProxyAuthenticationCredential requires both AccessKeyId and RawSecretAccessKey."
            )
        if xks_proxy_connectivity == VPC_ENDPOINT_SERVICE and not xks_proxy_vpc_endpoint_service_name:
            raise _validation(
                "XksProxyVpcEndpointServiceName is required when XksProxyConnectivity is "
                "VPC_ENDPOINT_SERVICE."
            )
        if xks_proxy_connectivity == PUBLIC_ENDPOINT and (
            xks_proxy_vpc_endpoint_service_name or xks_proxy_vpc_endpoint_service_owner
        ):
            raise _validation(
                "XksProxyVpcEndpointServiceName and XksProxyVpcEndpointServiceOwner are valid "
                "only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE."
            )
    else:
        raise _validation(f"CustomKeyStoreType {store_type!r} is not supported.")

    settings = current()
    stores = custom_key_stores(backend)
    # LimitExceededException: KMS Developer Guide, Resource quotas: "Custom key store resource
    # quota: 10" per account and Region.
    if len(stores) >= settings.custom_key_store_quota:
        raise exc.LimitExceededException(
            f"The request was rejected because the custom key store quota "
            f"({settings.custom_key_store_quota}) of this account and Region was exceeded."
        )
    _check_name_free(backend, custom_key_store_name)

    store = CustomKeyStore(
        id=_new_store_id(backend),
        name=custom_key_store_name,
        store_type=store_type,
        creation_date=now(),
    )
    if store_type == CLOUDHSM:
        assert cloud_hsm_cluster_id and trust_anchor_certificate and key_store_password
        cluster = _check_cloudhsm_cluster_for_new_store(backend, cloud_hsm_cluster_id, trust_anchor_certificate)
        store.cloud_hsm_cluster_id = cloud_hsm_cluster_id
        store.trust_anchor_certificate = trust_anchor_certificate
        store.cluster_certificate = cluster_certificate(cluster)
        store.key_store_password = key_store_password
    else:
        assert xks_proxy_connectivity and xks_proxy_uri_endpoint and xks_proxy_uri_path
        _check_xks_uri_free(
            backend,
            connectivity=xks_proxy_connectivity,
            uri_endpoint=xks_proxy_uri_endpoint,
            uri_path=xks_proxy_uri_path,
        )
        owner = None
        if xks_proxy_connectivity == VPC_ENDPOINT_SERVICE:
            assert xks_proxy_vpc_endpoint_service_name
            # XksProxyVpcEndpointServiceOwner: "If not provided, the Amazon Web Services account
            # ID calling the action will be used."
            owner = xks_proxy_vpc_endpoint_service_owner or backend.account_id
            _check_vpc_service(
                backend,
                service_name=xks_proxy_vpc_endpoint_service_name,
                owner=owner,
                uri_endpoint=xks_proxy_uri_endpoint,
            )
        else:
            _raise_proxy_fault(custom_key_store_name)
        store.connectivity = xks_proxy_connectivity
        store.uri_endpoint = xks_proxy_uri_endpoint
        store.uri_path = xks_proxy_uri_path
        store.vpc_endpoint_service_name = xks_proxy_vpc_endpoint_service_name if owner else None
        store.vpc_endpoint_service_owner = owner
        store.access_key_id = xks_proxy_access_key_id
        store.raw_secret_access_key = xks_proxy_raw_secret_access_key
    stores[store.id] = store
    return store


def describe_custom_key_stores(
    backend: KmsBackend,
    *,
    custom_key_store_id: str | None = None,
    custom_key_store_name: str | None = None,
) -> list[CustomKeyStore]:
    """DescribeCustomKeyStores: "use either the CustomKeyStoreName or CustomKeyStoreId parameter
    (but not both)"; an unknown id or name -> CustomKeyStoreNotFoundException. Creation order."""
    if custom_key_store_id is not None and custom_key_store_name is not None:
        raise _validation(
            "Specify either CustomKeyStoreId or CustomKeyStoreName, but not both."
        )
    stores = custom_key_stores(backend)
    if custom_key_store_id is not None:
        selected = [get_store(backend, custom_key_store_id)]
    elif custom_key_store_name is not None:
        selected = [s for s in stores.values() if s.name == custom_key_store_name]
        if not selected:
            raise exc.CustomKeyStoreNotFoundException(
                f"Custom key store named '{custom_key_store_name}' does not exist in this "
                "account and Region."
            )
    else:
        selected = list(stores.values())
    for store in selected:
        settle_store(backend, store)
    return selected


def _invalid_state(store: CustomKeyStore, operation: str, allowed: str) -> exc.CustomKeyStoreInvalidStateException:
    return exc.CustomKeyStoreInvalidStateException(
        f"{operation} is not valid for custom key store {store.id} in ConnectionState "
        f"{store.connection_state}; {allowed}."
    )


def connect_custom_key_store(backend: KmsBackend, custom_key_store_id: str) -> None:
    """ConnectCustomKeyStore: starts connecting and returns at once.

    CustomKeyStoreInvalidStateException: "You requested the ConnectCustomKeyStore operation on a
    custom key store with a ConnectionState of DISCONNECTING or FAILED. This operation is valid
    for all other ConnectionState values." (so CONNECTED/CONNECTING: success, nothing changes).
    """
    store = settle_store(backend, get_store(backend, custom_key_store_id))
    if store.connection_state in (DISCONNECTING, FAILED):
        raise _invalid_state(
            store,
            "ConnectCustomKeyStore",
            "to reconnect a store in a FAILED state, disconnect it (DisconnectCustomKeyStore), "
            "then connect it",
        )
    if store.connection_state in (CONNECTED, CONNECTING):
        return
    if store.is_cloudhsm:
        cluster = find_cluster(backend.account_id, backend.region_name, store.cloud_hsm_cluster_id or "")
        if cluster is not None:  # a vanished cluster ends the attempt as CLUSTER_NOT_FOUND
            if cluster.state != "ACTIVE":
                raise exc.CloudHsmClusterNotActiveException(
                    f"CloudHSM cluster {cluster.cluster_id} is {cluster.state}, not ACTIVE."
                )
            problem = cluster_configuration_problem(cluster, min_active_hsms=1)
            if problem:
                raise exc.CloudHsmClusterInvalidConfigurationException(problem)
    settings = current()
    store.connection_state = CONNECTING
    store.connection_error_code = None
    store.transition_due = now() + timedelta(seconds=max(0.0, settings.connect_delay_seconds))
    settle_store(backend, store)  # a zero delay ends at once


def disconnect_custom_key_store(backend: KmsBackend, custom_key_store_id: str) -> None:
    """DisconnectCustomKeyStore. CustomKeyStoreInvalidStateException: "You requested the
    DisconnectCustomKeyStore operation on a custom key store with a ConnectionState of
    DISCONNECTING or DISCONNECTED. This operation is valid for all other ConnectionState
    values." A FAILED store may be disconnected; that clears its ConnectionErrorCode."""
    store = settle_store(backend, get_store(backend, custom_key_store_id))
    if store.connection_state in (DISCONNECTING, DISCONNECTED):
        raise _invalid_state(store, "DisconnectCustomKeyStore", "the store is already disconnected or disconnecting")
    settings = current()
    store.connection_state = DISCONNECTING
    store.connection_error_code = None
    store.transition_due = now() + timedelta(seconds=max(0.0, settings.disconnect_delay_seconds))
    settle_store(backend, store)


def update_custom_key_store(
    backend: KmsBackend,
    custom_key_store_id: str,
    *,
    new_custom_key_store_name: str | None = None,
    key_store_password: str | None = None,
    cloud_hsm_cluster_id: str | None = None,
    xks_proxy_connectivity: str | None = None,
    xks_proxy_uri_endpoint: str | None = None,
    xks_proxy_uri_path: str | None = None,
    xks_proxy_vpc_endpoint_service_name: str | None = None,
    xks_proxy_vpc_endpoint_service_owner: str | None = None,
    xks_proxy_access_key_id: str | None = None,
    xks_proxy_raw_secret_access_key: str | None = None,
) -> None:
    """UpdateCustomKeyStore. ``xks_proxy_vpc_endpoint_service_name=""`` clears the service name
    (XksProxyConnectivity doc: "If you change the XksProxyConnectivity to PUBLIC_ENDPOINT, you
    must also change the XksProxyUriEndpoint and specify a null or empty string for the
    XksProxyVpcEndpointServiceName value")."""
    store = settle_store(backend, get_store(backend, custom_key_store_id))
    credential_given = xks_proxy_access_key_id is not None or xks_proxy_raw_secret_access_key is not None
    given = {
        name
        for name, value in {
            "NewCustomKeyStoreName": new_custom_key_store_name,
            "KeyStorePassword": key_store_password,
            "CloudHsmClusterId": cloud_hsm_cluster_id,
            "XksProxyConnectivity": xks_proxy_connectivity,
            "XksProxyUriEndpoint": xks_proxy_uri_endpoint,
            "XksProxyUriPath": xks_proxy_uri_path,
            "XksProxyVpcEndpointServiceName": xks_proxy_vpc_endpoint_service_name,
            "XksProxyVpcEndpointServiceOwner": xks_proxy_vpc_endpoint_service_owner,
            "XksProxyAuthenticationCredential": True if credential_given else None,
        }.items()
        if value is not None
    }
    # Fields of the other store type: "This parameter is valid only for custom key stores with
    # a CustomKeyStoreType of ..."
    if store.is_cloudhsm:
        wrong = sorted(given & set(XKS_ONLY_FIELDS))
        if wrong:
            raise _validation(
                f"{', '.join(wrong)} is valid only for custom key stores with a "
                "CustomKeyStoreType of EXTERNAL_KEY_STORE."
            )
    else:
        wrong = sorted(given & set(CLOUDHSM_ONLY_FIELDS))
        if wrong:
            raise _validation(
                f"{', '.join(wrong)} is valid only for custom key stores with a "
                "CustomKeyStoreType of AWS_CLOUDHSM."
            )
    if credential_given and (xks_proxy_access_key_id is None or xks_proxy_raw_secret_access_key is None):
        # XksProxyAuthenticationCredential doc: "You must specify both the AccessKeyId and
        # SecretAccessKey value in the authentication credential, even if you are only updating
        # one value."
        raise _validation(
            "XksProxyAuthenticationCredential requires both AccessKeyId and RawSecretAccessKey."
        )

    # Connection state (UpdateCustomKeyStore doc and CustomKeyStoreInvalidStateException).
    connected_ok = UPDATABLE_WHILE_CONNECTED[store.store_type]
    needs_disconnected = sorted(given - connected_ok)
    if needs_disconnected and store.connection_state != DISCONNECTED:
        raise _invalid_state(
            store,
            "UpdateCustomKeyStore",
            f"to change {', '.join(needs_disconnected)} the store must be DISCONNECTED",
        )
    if given and store.connection_state not in (CONNECTED, DISCONNECTED):
        raise _invalid_state(
            store,
            "UpdateCustomKeyStore",
            "the store must be CONNECTED or DISCONNECTED",
        )

    if new_custom_key_store_name is not None and new_custom_key_store_name != store.name:
        _check_name_free(backend, new_custom_key_store_name, exclude=store)

    if store.is_cloudhsm:
        if cloud_hsm_cluster_id is not None and cloud_hsm_cluster_id != store.cloud_hsm_cluster_id:
            cluster = find_cluster(backend.account_id, backend.region_name, cloud_hsm_cluster_id)
            if cluster is None:
                raise exc.CloudHsmClusterNotFoundException(
                    f"KMS cannot find the CloudHSM cluster with cluster ID {cloud_hsm_cluster_id}."
                )
            # CloudHsmClusterNotRelatedException: "the specified CloudHSM cluster has a
            # different cluster certificate than the original cluster"
            original = store.cluster_certificate
            if not original or cluster_certificate(cluster) != original:
                raise exc.CloudHsmClusterNotRelatedException(
                    f"CloudHSM cluster {cloud_hsm_cluster_id} does not share a backup history "
                    f"with cluster {store.cloud_hsm_cluster_id} of custom key store {store.id}."
                )
            if cluster.state != "ACTIVE":
                raise exc.CloudHsmClusterNotActiveException(
                    f"CloudHSM cluster {cloud_hsm_cluster_id} is {cluster.state}, not ACTIVE."
                )
            problem = cluster_configuration_problem(cluster, min_active_hsms=2)
            if problem:
                raise exc.CloudHsmClusterInvalidConfigurationException(problem)
        if new_custom_key_store_name is not None:
            store.name = new_custom_key_store_name
        if key_store_password is not None:
            store.key_store_password = key_store_password
        if cloud_hsm_cluster_id is not None:
            store.cloud_hsm_cluster_id = cloud_hsm_cluster_id
        return

    # --- external key store: work out the resulting proxy configuration --------------------
    old_connectivity = store.connectivity or PUBLIC_ENDPOINT
    connectivity = xks_proxy_connectivity or old_connectivity
    uri_endpoint = xks_proxy_uri_endpoint or store.uri_endpoint or ""
    uri_path = xks_proxy_uri_path or store.uri_path or ""
    if xks_proxy_vpc_endpoint_service_name is None:
        service_name = store.vpc_endpoint_service_name
    else:
        service_name = xks_proxy_vpc_endpoint_service_name or None
    owner = xks_proxy_vpc_endpoint_service_owner or store.vpc_endpoint_service_owner

    if connectivity != old_connectivity:
        # XksProxyConnectivity doc: switching connectivity requires a new XksProxyUriEndpoint,
        # and adding (VPC) or clearing (PUBLIC) the VPC endpoint service name.
        if xks_proxy_uri_endpoint is None or xks_proxy_uri_endpoint.lower() == (store.uri_endpoint or "").lower():
            raise _validation(
                f"If you change the XksProxyConnectivity to {connectivity}, you must also change "
                "the XksProxyUriEndpoint."
            )
        if connectivity == VPC_ENDPOINT_SERVICE and not xks_proxy_vpc_endpoint_service_name:
            raise _validation(
                "If you change the XksProxyConnectivity to VPC_ENDPOINT_SERVICE, you must also "
                "add an XksProxyVpcEndpointServiceName value."
            )
        if connectivity == PUBLIC_ENDPOINT and xks_proxy_vpc_endpoint_service_name:
            raise _validation(
                "If you change the XksProxyConnectivity to PUBLIC_ENDPOINT, you must specify a "
                "null or empty string for the XksProxyVpcEndpointServiceName value."
            )
    if connectivity == PUBLIC_ENDPOINT:
        if xks_proxy_vpc_endpoint_service_name or xks_proxy_vpc_endpoint_service_owner:
            raise _validation(
                "XksProxyVpcEndpointServiceName and XksProxyVpcEndpointServiceOwner are valid "
                "only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE."
            )
        service_name, owner = None, None
    else:
        if not service_name:
            raise _validation(
                "An external key store with VPC_ENDPOINT_SERVICE connectivity requires an "
                "XksProxyVpcEndpointServiceName."
            )
        owner = owner or backend.account_id

    proxy_changed = bool(
        given
        & {
            "XksProxyConnectivity",
            "XksProxyUriEndpoint",
            "XksProxyUriPath",
            "XksProxyVpcEndpointServiceName",
            "XksProxyVpcEndpointServiceOwner",
        }
    )
    if proxy_changed:
        _check_xks_uri_free(
            backend, connectivity=connectivity, uri_endpoint=uri_endpoint, uri_path=uri_path, exclude=store
        )
        if connectivity == VPC_ENDPOINT_SERVICE:
            assert service_name and owner
            _check_vpc_service(
                backend, service_name=service_name, owner=owner, uri_endpoint=uri_endpoint, exclude=store
            )
    if connectivity == PUBLIC_ENDPOINT and (proxy_changed or credential_given):
        _raise_proxy_fault(store.name, new_custom_key_store_name)

    if new_custom_key_store_name is not None:
        store.name = new_custom_key_store_name
    store.connectivity = connectivity
    store.uri_endpoint = uri_endpoint
    store.uri_path = uri_path
    store.vpc_endpoint_service_name = service_name
    store.vpc_endpoint_service_owner = owner
    if credential_given:
        store.access_key_id = xks_proxy_access_key_id
        store.raw_secret_access_key = xks_proxy_raw_secret_access_key


def delete_custom_key_store(backend: KmsBackend, custom_key_store_id: str) -> None:
    """DeleteCustomKeyStore: refused unless DISCONNECTED (CustomKeyStoreInvalidStateException)
    and while the store contains any KMS key, PendingDeletion included
    (CustomKeyStoreHasCMKsException: "use the ScheduleKeyDeletion operation to delete the KMS
    keys. After they are deleted, you can delete the custom key store")."""
    store = settle_store(backend, get_store(backend, custom_key_store_id))
    purge_expired_keys(backend)
    if store.connection_state != DISCONNECTED:
        raise _invalid_state(store, "DeleteCustomKeyStore", "the store must be DISCONNECTED")
    remaining = keys_in_store(backend, store.id)
    if remaining:
        raise exc.CustomKeyStoreHasCMKsException(
            f"Custom key store {store.id} contains {len(remaining)} KMS key(s). Use "
            "ScheduleKeyDeletion to delete them; after they are deleted, you can delete the "
            "custom key store."
        )
    del custom_key_stores(backend)[store.id]


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------


def check_create_key_parameters(
    *,
    origin: str | None,
    custom_key_store_id: str | None,
    xks_key_id: str | None,
    key_spec: str | None,
    key_usage: str | None,
    multi_region: bool | None,
) -> None:
    """CreateKey parameter combinations (CreateKey doc, Origin / CustomKeyStoreId / XksKeyId).

    Missing or misplaced parameters -> ValidationException; a key type that a custom key store
    cannot hold ("No other key type is supported in a custom key store", "you cannot create a
    multi-Region key in a custom key store") -> UnsupportedOperationException.
    """
    origin = origin or "AWS_KMS"
    custom_origin = origin in CUSTOM_KEY_STORE_ORIGINS
    if xks_key_id is not None and origin != EXTERNAL_KEY_STORE:
        raise _validation(
            "XksKeyId is valid only for KMS keys with an Origin value of EXTERNAL_KEY_STORE."
        )
    if origin == EXTERNAL_KEY_STORE and xks_key_id is None:
        raise _validation("XksKeyId is required for a KMS key with an Origin value of EXTERNAL_KEY_STORE.")
    if custom_origin and custom_key_store_id is None:
        raise _validation(f"CustomKeyStoreId is required for a KMS key with an Origin value of {origin}.")
    if custom_key_store_id is not None and not custom_origin:
        raise _validation(
            "CustomKeyStoreId is valid only for KMS keys with an Origin value of AWS_CLOUDHSM "
            "or EXTERNAL_KEY_STORE."
        )
    if custom_origin:
        if (key_spec or "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
            raise exc.UnsupportedOperationException(
                f"KeySpec {key_spec} is not supported for KMS keys in a custom key store; the "
                "KeySpec value must be SYMMETRIC_DEFAULT."
            )
        if (key_usage or "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
            raise exc.UnsupportedOperationException(
                f"KeyUsage {key_usage} is not supported for KMS keys in a custom key store; the "
                "KeyUsage value must be ENCRYPT_DECRYPT."
            )
        if multi_region:
            raise exc.UnsupportedOperationException(
                "You cannot create a multi-Region key in a custom key store."
            )


def create_key_in_custom_key_store(
    backend: KmsBackend,
    *,
    custom_key_store_id: str,
    origin: str,
    xks_key_id: str | None = None,
    policy: str | None = None,
    description: str | None = None,
    tags: list[dict[str, str]] | None = None,
) -> Key:
    """CreateKey with Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE (after
    :func:`check_create_key_parameters`)."""
    store = settle_store(backend, get_store(backend, custom_key_store_id))
    if CUSTOM_KEY_STORE_ORIGINS.get(origin) != store.store_type:
        raise exc.UnsupportedOperationException(
            f"Origin {origin} is not valid for custom key store {store.id} of type "
            f"{store.store_type}."
        )
    # CustomKeyStoreInvalidStateException: "You requested the CreateKey operation in a custom
    # key store that is not connected. This operations is valid only when the custom key store
    # ConnectionState is CONNECTED."
    if store.connection_state != CONNECTED:
        raise _invalid_state(store, "CreateKey", "the store must be CONNECTED")
    if store.is_cloudhsm:
        cluster = find_cluster(backend.account_id, backend.region_name, store.cloud_hsm_cluster_id or "")
        problem = (
            f"CloudHSM cluster {store.cloud_hsm_cluster_id} was not found."
            if cluster is None
            else cluster_configuration_problem(cluster, min_active_hsms=2)
        )
        if problem:
            raise exc.CloudHsmClusterInvalidConfigurationException(problem)
    else:
        assert xks_key_id is not None
        holder = store.xks_keys.get(xks_key_id)
        if holder is not None and holder in backend.keys:
            raise exc.XksKeyAlreadyInUseException(
                f"External key {xks_key_id} is already associated with KMS key {holder} in "
                f"external key store {store.id}."
            )
        faults = current().faults
        if xks_key_id in (getattr(faults, "xks_missing_keys", None) or {}).get(store.name, ()):
            raise exc.XksKeyNotFoundException(
                f"The external key store proxy of {store.id} could not find external key "
                f"{xks_key_id}."
            )
        if xks_key_id in (getattr(faults, "xks_invalid_keys", None) or {}).get(store.name, ()):
            raise exc.XksKeyInvalidConfigurationException(
                f"External key {xks_key_id} must be an enabled AES-256 symmetric key that "
                "performs encryption and decryption."
            )
    key = backend.create_key(policy, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", description or "", tags, False, origin)
    key.custom_key_store_id = store.id  # type: ignore[attr-defined]
    if store.is_cloudhsm:
        key.cloud_hsm_cluster_id = store.cloud_hsm_cluster_id  # type: ignore[attr-defined]
    else:
        key.xks_key_id = xks_key_id  # type: ignore[attr-defined]
        store.xks_keys[xks_key_id] = key.id  # type: ignore[index]
    return key


def key_store_of(backend: KmsBackend, key: Key) -> CustomKeyStore | None:
    store_id = getattr(key, "custom_key_store_id", None)
    if not store_id:
        return None
    return custom_key_stores(backend).get(store_id)


def effective_key_state(backend: KmsBackend, key: Key) -> str:
    """The KeyState KMS reports.

    "A KMS key in a custom key store is Unavailable when the custom key store is intentionally
    disconnected" (Developer Guide, Key states) - here: whenever its store is not CONNECTED. A
    key scheduled for deletion keeps reporting PendingDeletion (with its DeletionDate), since
    the key-state table never lets an Unavailable key be cancelled. The underlying
    Enabled/Disabled/PendingDeletion state is kept on the key.
    """
    if key.key_state == PENDING_DELETION or not getattr(key, "custom_key_store_id", None):
        return key.key_state
    store = key_store_of(backend, key)
    if store is None:
        return UNAVAILABLE
    settle_store(backend, store)
    return key.key_state if store.connection_state == CONNECTED else UNAVAILABLE


def key_metadata(backend: KmsBackend, key: Key) -> dict[str, Any]:
    """DescribeKey's KeyMetadata for ``key``: moto's plus Origin/CustomKeyStoreId/
    CloudHsmClusterId/XksKeyConfiguration and the effective KeyState."""
    moto_to_dict = getattr(Key, "_moto_to_dict", Key.to_dict)
    metadata: dict[str, Any] = moto_to_dict(key)["KeyMetadata"]
    store_id = getattr(key, "custom_key_store_id", None)
    if store_id:
        metadata["CustomKeyStoreId"] = store_id
        store = key_store_of(backend, key)
        cluster_id = getattr(key, "cloud_hsm_cluster_id", None)
        if cluster_id:
            metadata["CloudHsmClusterId"] = (store.cloud_hsm_cluster_id if store else None) or cluster_id
        xks_key_id = getattr(key, "xks_key_id", None)
        if xks_key_id:
            metadata["XksKeyConfiguration"] = {"Id": xks_key_id}
    state = effective_key_state(backend, key)
    metadata["KeyState"] = state
    # KeyMetadata.Enabled: "When KeyState is Enabled this value is true, otherwise it is false."
    metadata["Enabled"] = state == "Enabled"
    if key.key_state == PENDING_DELETION and key.deletion_date is not None:
        metadata["DeletionDate"] = epoch_seconds(key.deletion_date)
    else:
        metadata.pop("DeletionDate", None)
    return metadata


def require_key(backend: KmsBackend, key_id: str) -> Key:
    raw = backend.get_key_id(key_id)
    key = backend.keys.get(raw)
    if key is None:
        raise exc.NotFoundException(f"Key '{key_id}' does not exist")
    return key


def schedule_key_deletion(
    backend: KmsBackend, key_id: str, pending_window_in_days: int | None = None
) -> Key:
    """ScheduleKeyDeletion: "you can specify a waiting period of 7-30 days" (default 30) ->
    PendingDeletion with DeletionDate = now + window; a key already PendingDeletion ->
    KMSInvalidStateException (Key states table)."""
    days = DEFAULT_DELETION_WINDOW_DAYS if pending_window_in_days is None else pending_window_in_days
    if not MIN_DELETION_WINDOW_DAYS <= days <= MAX_DELETION_WINDOW_DAYS:
        bound = "greater than or equal to 7" if days < MIN_DELETION_WINDOW_DAYS else "less than or equal to 30"
        raise _validation(
            f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to "
            f"satisfy constraint: Member must have value {bound}"
        )
    key = require_key(backend, key_id)
    if key.key_state == PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")
    due = naive_utc(now()) + timedelta(days=days)
    key.enabled = False
    key.key_state = PENDING_DELETION
    key.deletion_date = due
    key.pending_window_in_days = days  # type: ignore[attr-defined]
    heapq.heappush(_deletion_heap(backend), (due, key.id))
    return key


def cancel_key_deletion(backend: KmsBackend, key_id: str) -> Key:
    """CancelKeyDeletion: "When this operation succeeds, the key state of the KMS key is
    Disabled"; a key not PendingDeletion -> KMSInvalidStateException."""
    key = require_key(backend, key_id)
    if key.key_state != PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is not pending deletion.")
    key.key_state = "Disabled"
    key.enabled = False
    key.deletion_date = None
    return key


def check_key_usable(backend: KmsBackend, key: Key) -> None:
    """Cryptographic operations: a PendingDeletion key or an Unavailable key (store not
    CONNECTED) -> KMSInvalidStateException (Key states table)."""
    state = effective_key_state(backend, key)
    if state == PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")
    if state == UNAVAILABLE:
        raise exc.KMSInvalidStateException(
            f"{key.arn} is unavailable: its custom key store {getattr(key, 'custom_key_store_id', '')} "
            "is not connected."
        )


# ---------------------------------------------------------------------------------------------
# Paging (Limit / Marker / NextMarker / Truncated)
# ---------------------------------------------------------------------------------------------

T = TypeVar("T")


def _encode_marker(kind: str, index: int, next_id: str, last_id: str) -> str:
    raw = "\x1f".join((kind, str(index), next_id, last_id)).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_marker(kind: str, marker: str) -> tuple[int, str, str]:
    try:
        raw = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
        got_kind, index, next_id, last_id = raw.split("\x1f", 3)
        if got_kind != kind:
            raise ValueError(kind)
        return int(index), next_id, last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise exc.InvalidMarkerException(
            "The request was rejected because the marker that specifies where pagination "
            "should next begin is not valid."
        ) from None


def paginate(
    items: Sequence[T],
    identity: Any,
    *,
    kind: str,
    limit: int,
    marker: str | None,
) -> tuple[list[T], str | None]:
    """One page of ``items`` (a stable order) after ``marker``; returns (page, next_marker).

    The marker names the next item to return and the last one returned, so a page boundary
    survives items being added or removed elsewhere in the list (e.g. keys purged between two
    pages): the next page starts at the named next item, else after the named last item, else
    at the former position.
    """
    start = 0
    if marker is not None:
        index, next_id, last_id = _decode_marker(kind, marker)
        start = min(max(index, 0), len(items))
        if not (start < len(items) and identity(items[start]) == next_id):
            positions = {identity(item): position for position, item in enumerate(items)}
            if next_id in positions:
                start = positions[next_id]
            elif last_id in positions:
                start = positions[last_id] + 1
    page = list(items[start : start + limit])
    end = start + len(page)
    if end < len(items) and page:
        return page, _encode_marker(kind, end, identity(items[end]), identity(page[-1]))
    return page, None


# ---------------------------------------------------------------------------------------------
# moto's private key, generated on first use
# ---------------------------------------------------------------------------------------------

_ECC_SIGNING = {
    "ECC_NIST_P256": ["ECDSA_SHA_256"],
    "ECC_SECG_P256K1": ["ECDSA_SHA_256"],
    "ECC_NIST_P384": ["ECDSA_SHA_384"],
    "ECC_NIST_P521": ["ECDSA_SHA_512"],
}


class LazyPrivateKey:
    """Stands in for moto's ``generate_private_key(key_spec)`` result.

    moto's ``Key.__init__`` generates an RSA-2048 key for every key, symmetric ones included
    (~50 ms each); this defers generation to the first sign/verify/GetPublicKey. A generated
    key pickles as PEM (cryptography key objects do not pickle).
    """

    __slots__ = ("key_spec", "_real")

    def __init__(self, key_spec: str) -> None:
        self.key_spec = key_spec
        self._real: Any = None

    @property
    def generated(self) -> bool:
        return self._real is not None

    def _key(self) -> Any:
        if self._real is None:
            from moto.kms.utils import generate_private_key

            self._real = generate_private_key(self.key_spec)
        return self._real

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        return self._key().sign(message, signing_algorithm)

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        return self._key().verify(message, signature, signing_algorithm)

    def public_key(self) -> bytes:
        return self._key().public_key()

    def __getattr__(self, name: str) -> Any:  # e.g. .private_key / .key_size of moto's wrapper
        if name.startswith("__") or name in LazyPrivateKey.__slots__:
            raise AttributeError(name)
        return getattr(self._key(), name)

    def __getstate__(self) -> dict[str, Any]:
        pem = None
        if self._real is not None:
            from cryptography.hazmat.primitives import serialization

            pem = self._real.private_key.private_bytes(
                encoding=serialization.Encoding.PEM,
                format=serialization.PrivateFormat.PKCS8,
                encryption_algorithm=serialization.NoEncryption(),
            )
        return {"key_spec": self.key_spec, "pem": pem}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.key_spec = state["key_spec"]
        self._real = None
        pem = state.get("pem")
        if pem:
            from cryptography.hazmat.primitives import serialization
            from moto.kms.utils import ECDSAPrivateKey, RSAPrivateKey

            loaded = serialization.load_pem_private_key(pem, password=None)
            if self.key_spec in _ECC_SIGNING:
                wrapper: Any = ECDSAPrivateKey.__new__(ECDSAPrivateKey)
                wrapper.valid_signing_algorithms = list(_ECC_SIGNING[self.key_spec])
            else:
                wrapper = RSAPrivateKey.__new__(RSAPrivateKey)
                wrapper.key_size = loaded.key_size  # type: ignore[union-attr]
            wrapper.private_key = loaded
            self._real = wrapper
