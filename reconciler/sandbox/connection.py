"""The connection state machine of a custom key store.

DISCONNECTED --Connect--> CONNECTING --(connect delay)--> CONNECTED or FAILED (+ ConnectionErrorCode)
CONNECTED / CONNECTING / FAILED --Disconnect--> DISCONNECTING --(disconnect delay)--> DISCONNECTED

ConnectCustomKeyStore and DisconnectCustomKeyStore only start a transition and return at once;
its end is due at a time of the emulator clock (``settings.connect_delay_seconds``,
``disconnect_delay_seconds``) and is applied lazily, by :func:`settle_store` (one store) or
:func:`reconciler.sandbox.timeline.settle` (the whole backend, at the start of every request).
The rules, with the API Reference sentences behind them: docs/kms-rules.md, "Connection states".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from moto.kms.models import KmsBackend

from reconciler.sandbox import backing, xks_link
from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.settings import current
from reconciler.sandbox.state import (
    CONNECTED,
    CONNECTING,
    DISCONNECTED,
    DISCONNECTING,
    FAILED,
    CustomKeyStore,
    bump_generation,
    get_store,
    invalid_state,
    now,
)


def connection_outcome(backend: KmsBackend, store: CustomKeyStore) -> str | None:
    """The ConnectionErrorCode a finished connection attempt ends with, or None (CONNECTED)."""
    faults = current().faults
    code = faults.connection_errors.get(store.name)
    if code:
        return code
    if store.is_cloudhsm:
        cluster = backing.find_cluster(backend.account_id, backend.region_name, store.cloud_hsm_cluster_id or "")
        if cluster is None:
            return "CLUSTER_NOT_FOUND"
        if not backing.active_hsms(cluster):
            return "INSUFFICIENT_CLOUDHSM_HSMS"
        return None
    if store.is_vpc:
        owner = store.vpc_endpoint_service_owner or backend.account_id
        configuration = backing.find_vpc_endpoint_service(
            owner, backend.region_name, store.vpc_endpoint_service_name or ""
        )
        if configuration is None or not backing.vpc_service_visible_to_kms(configuration, backend.region_name):
            return "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND"
        if backing.vpc_service_configuration_problem(configuration, store.uri_endpoint):
            return "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"
    # a registered proxy is asked for its health now, when the attempt ends (xks_link)
    return xks_link.connection_error(store)


def settle_due(backend: KmsBackend, store: CustomKeyStore, at: datetime) -> bool:
    """End the store's transition if it is due at ``at``; True when something changed."""
    due = store.transition_due
    if due is None or at < due:
        return False
    if store.connection_state == CONNECTING:
        code = connection_outcome(backend, store)
        store.connection_state = FAILED if code else CONNECTED
        store.connection_error_code = code
    elif store.connection_state == DISCONNECTING:
        store.connection_state = DISCONNECTED
        store.connection_error_code = None
    store.transition_due = None
    return True


def settle_store(backend: KmsBackend, store: CustomKeyStore) -> CustomKeyStore:
    """Bring one store's connection state up to the emulator clock."""
    if settle_due(backend, store, now()):
        bump_generation(backend)
    return store


def current_store(backend: KmsBackend, custom_key_store_id: str) -> CustomKeyStore:
    """The store (CustomKeyStoreNotFoundException if there is none), settled."""
    return settle_store(backend, get_store(backend, custom_key_store_id))


def connect_custom_key_store(backend: KmsBackend, custom_key_store_id: str) -> None:
    """ConnectCustomKeyStore: starts connecting and returns at once.

    CustomKeyStoreInvalidStateException: "You requested the ConnectCustomKeyStore operation on a
    custom key store with a ConnectionState of DISCONNECTING or FAILED. This operation is valid
    for all other ConnectionState values." (so CONNECTED/CONNECTING: success, nothing changes).
    """
    store = current_store(backend, custom_key_store_id)
    if store.connection_state in (DISCONNECTING, FAILED):
        raise invalid_state(
            store,
            "ConnectCustomKeyStore",
            "to reconnect a store in a FAILED state, disconnect it (DisconnectCustomKeyStore), "
            "then connect it",
        )
    if store.connection_state in (CONNECTED, CONNECTING):
        return
    if store.is_cloudhsm:
        cluster = backing.find_cluster(backend.account_id, backend.region_name, store.cloud_hsm_cluster_id or "")
        if cluster is not None:  # a vanished cluster ends the attempt as CLUSTER_NOT_FOUND
            if cluster.state != "ACTIVE":
                raise exc.CloudHsmClusterNotActiveException(
                    f"CloudHSM cluster {cluster.cluster_id} is {cluster.state}, not ACTIVE."
                )
            problem = backing.cluster_configuration_problem(cluster, min_active_hsms=1)
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
    store = current_store(backend, custom_key_store_id)
    if store.connection_state in (DISCONNECTING, DISCONNECTED):
        raise invalid_state(store, "DisconnectCustomKeyStore", "the store is already disconnected or disconnecting")
    settings = current()
    store.connection_state = DISCONNECTING
    store.connection_error_code = None
    store.transition_due = now() + timedelta(seconds=max(0.0, settings.disconnect_delay_seconds))
    settle_store(backend, store)
