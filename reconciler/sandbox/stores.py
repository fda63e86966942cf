"""Custom key stores: create, describe and delete, and the uniqueness rules they share.

Every rule cites the KMS API Reference text (botocore's KMS service model); docs/kms-rules.md
collects them. Updates are in :mod:`reconciler.sandbox.store_update`, the connection state machine
in :mod:`reconciler.sandbox.connection`. Field lengths and patterns are checked before any of this
runs, by the wire layer (:mod:`reconciler.sandbox.apimodel`).
"""

from __future__ import annotations

from typing import Any, Iterable

from moto.kms.models import KmsBackend

from reconciler.sandbox import backing, xks_link
from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.connection import current_store, settle_store
from reconciler.sandbox.settings import current
from reconciler.sandbox.state import (
    CLOUDHSM,
    DISCONNECTED,
    EXTERNAL_KEY_STORE,
    PUBLIC_ENDPOINT,
    VPC_ENDPOINT_SERVICE,
    CustomKeyStore,
    custom_key_stores,
    get_store,
    invalid_state,
    keys_in_store,
    new_store_id,
    now,
    validation,
)
from reconciler.sandbox.timeline import purge_expired_keys

# ---------------------------------------------------------------------------------------------
# Uniqueness in one account and Region
# ---------------------------------------------------------------------------------------------


def other_stores(backend: KmsBackend, exclude: CustomKeyStore | None) -> Iterable[CustomKeyStore]:
    return (s for s in custom_key_stores(backend).values() if s is not exclude)


def check_name_free(backend: KmsBackend, name: str, exclude: CustomKeyStore | None = None) -> None:
    # CustomKeyStoreNameInUseException: "the specified custom key store name is already assigned
    # to another custom key store in the account"
    for other in other_stores(backend, exclude):
        if other.name == name:
            raise exc.CustomKeyStoreNameInUseException(
                f"Custom key store name '{name}' is already in use in this account and Region."
            )


def check_xks_uri_free(
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
    others = [s for s in other_stores(backend, exclude) if s.store_type == EXTERNAL_KEY_STORE]
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


def check_vpc_service(
    backend: KmsBackend,
    *,
    service_name: str,
    owner: str,
    uri_endpoint: str,
    exclude: CustomKeyStore | None = None,
) -> None:
    """XksProxyVpcEndpointServiceInUseException ("Each external key store in a Region must use a
    different Amazon VPC endpoint service"), ...NotFoundException, ...InvalidConfigurationException."""
    for other in other_stores(backend, exclude):
        if (
            other.is_vpc
            and other.vpc_endpoint_service_name == service_name
            and (other.vpc_endpoint_service_owner or backend.account_id) == owner
        ):
            raise exc.XksProxyVpcEndpointServiceInUseException(
                f"VPC endpoint service {service_name} is already associated with external key "
                f"store {other.id}."
            )
    configuration = backing.find_vpc_endpoint_service(owner, backend.region_name, service_name)
    if configuration is None or not backing.vpc_service_visible_to_kms(configuration, backend.region_name):
        raise exc.XksProxyVpcEndpointServiceNotFoundException(
            f"KMS could not find VPC endpoint service {service_name} owned by account {owner}. "
            "Verify the name and that its Allow principals list includes "
            f"{backing.kms_service_principal(backend.region_name)}."
        )
    problem = backing.vpc_service_configuration_problem(configuration, uri_endpoint)
    if problem:
        raise exc.XksProxyVpcEndpointServiceInvalidConfigurationException(problem)


def raise_proxy_fault(*store_names: str | None) -> None:
    """For PUBLIC_ENDPOINT stores KMS contacts the proxy during Create/Update (XksProxyUriEndpoint
    doc: "KMS connects to the external key store proxy while creating the custom key store")."""
    proxy_errors = current().faults.proxy_errors
    for name in store_names:
        if name and name in proxy_errors:
            raise exc.exception_class(proxy_errors[name])()


def check_cloudhsm_cluster_for_new_store(
    backend: KmsBackend, cluster_id: str, trust_anchor: str
) -> Any:
    cluster = backing.find_cluster(backend.account_id, backend.region_name, cluster_id)
    if cluster is None:
        raise exc.CloudHsmClusterNotFoundException(
            f"KMS cannot find the CloudHSM cluster with cluster ID {cluster_id}."
        )
    certificate = backing.cluster_certificate(cluster)
    for other in other_stores(backend, None):
        if not other.is_cloudhsm:
            continue
        other_cluster = backing.find_cluster(backend.account_id, backend.region_name, other.cloud_hsm_cluster_id or "")
        other_certificate = (
            backing.cluster_certificate(other_cluster) if other_cluster is not None else other.cluster_certificate
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
    if backing.normalise_pem(getattr(cluster, "trust_anchor", None)) != backing.normalise_pem(trust_anchor):
        raise exc.IncorrectTrustAnchorException(
            f"The trust anchor certificate is not the trust anchor certificate of CloudHSM "
            f"cluster {cluster_id}."
        )
    problem = backing.cluster_configuration_problem(cluster, min_active_hsms=2)
    if problem:
        raise exc.CloudHsmClusterInvalidConfigurationException(problem)
    return cluster


# ---------------------------------------------------------------------------------------------
# CreateCustomKeyStore, DescribeCustomKeyStores, DeleteCustomKeyStore
# ---------------------------------------------------------------------------------------------


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
            raise validation(
                f"{', '.join(wrong)} is valid only for custom key stores with a "
                "CustomKeyStoreType of EXTERNAL_KEY_STORE."
            )
        missing = [n for n, v in given_hsm.items() if v is None]
        if missing:
            raise validation(
                f"{', '.join(missing)} is required for custom key stores with a "
                "CustomKeyStoreType of AWS_CLOUDHSM."
            )
    elif store_type == EXTERNAL_KEY_STORE:
        wrong = [n for n, v in given_hsm.items() if v is not None]
        if wrong:
            raise validation(
                f"{', '.join(wrong)} is valid only for custom key stores with a "
                "CustomKeyStoreType of AWS_CLOUDHSM."
            )
        required = ("XksProxyConnectivity", "XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyAuthenticationCredential")
        missing = [n for n in required if given_xks[n] is None]
        if missing:
            raise validation(
                f"{', '.join(missing)} is required for custom key stores with a "
                "CustomKeyStoreType of EXTERNAL_KEY_STORE."
            )
        if xks_proxy_access_key_id is None or xks_proxy_raw_secret_access_key is None:
            raise validation(
                "XksProxyAuthenticationCredential requires both AccessKeyId and RawSecretAccessKey."
            )
        if xks_proxy_connectivity == VPC_ENDPOINT_SERVICE and not xks_proxy_vpc_endpoint_service_name:
            raise validation(
                "XksProxyVpcEndpointServiceName is required when XksProxyConnectivity is "
                "VPC_ENDPOINT_SERVICE."
            )
        if xks_proxy_connectivity == PUBLIC_ENDPOINT and (
            xks_proxy_vpc_endpoint_service_name or xks_proxy_vpc_endpoint_service_owner
        ):
            raise validation(
                "XksProxyVpcEndpointServiceName and XksProxyVpcEndpointServiceOwner are valid "
                "only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE."
            )
    else:
        raise validation(f"CustomKeyStoreType {store_type!r} is not supported.")

    settings = current()
    stores = custom_key_stores(backend)
    # LimitExceededException: KMS Developer Guide, Resource quotas: "Custom key store resource
    # quota: 10" per account and Region.
    if len(stores) >= settings.custom_key_store_quota:
        raise exc.LimitExceededException(
            f"The request was rejected because the custom key store quota "
            f"({settings.custom_key_store_quota}) of this account and Region was exceeded."
        )
    check_name_free(backend, custom_key_store_name)

    store = CustomKeyStore(
        id=new_store_id(backend),
        name=custom_key_store_name,
        store_type=store_type,
        creation_date=now(),
    )
    if store_type == CLOUDHSM:
        assert cloud_hsm_cluster_id and trust_anchor_certificate and key_store_password
        cluster = check_cloudhsm_cluster_for_new_store(backend, cloud_hsm_cluster_id, trust_anchor_certificate)
        store.cloud_hsm_cluster_id = cloud_hsm_cluster_id
        store.trust_anchor_certificate = trust_anchor_certificate
        store.cluster_certificate = backing.cluster_certificate(cluster)
        store.key_store_password = key_store_password
    else:
        assert xks_proxy_connectivity and xks_proxy_uri_endpoint and xks_proxy_uri_path
        check_xks_uri_free(
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
            check_vpc_service(
                backend,
                service_name=xks_proxy_vpc_endpoint_service_name,
                owner=owner,
                uri_endpoint=xks_proxy_uri_endpoint,
            )
        else:
            raise_proxy_fault(custom_key_store_name)
        store.connectivity = xks_proxy_connectivity
        store.uri_endpoint = xks_proxy_uri_endpoint
        store.uri_path = xks_proxy_uri_path
        store.vpc_endpoint_service_name = xks_proxy_vpc_endpoint_service_name if owner else None
        store.vpc_endpoint_service_owner = owner
        store.access_key_id = xks_proxy_access_key_id
        store.raw_secret_access_key = xks_proxy_raw_secret_access_key
        if xks_proxy_connectivity == PUBLIC_ENDPOINT:
            # XksProxyUriEndpoint doc: "KMS connects to the external key store proxy while
            # creating the custom key store" (a registered proxy is called: xks_link)
            xks_link.check_store(store, "CreateCustomKeyStore")
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
        raise validation(
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


def delete_custom_key_store(backend: KmsBackend, custom_key_store_id: str) -> None:
    """DeleteCustomKeyStore: refused unless DISCONNECTED (CustomKeyStoreInvalidStateException)
    and while the store contains any KMS key, PendingDeletion included
    (CustomKeyStoreHasCMKsException: "use the ScheduleKeyDeletion operation to delete the KMS
    keys. After they are deleted, you can delete the custom key store")."""
    store = current_store(backend, custom_key_store_id)
    purge_expired_keys(backend)
    if store.connection_state != DISCONNECTED:
        raise invalid_state(store, "DeleteCustomKeyStore", "the store must be DISCONNECTED")
    remaining = keys_in_store(backend, store.id)
    if remaining:
        raise exc.CustomKeyStoreHasCMKsException(
            f"Custom key store {store.id} contains {len(remaining)} KMS key(s). Use "
            "ScheduleKeyDeletion to delete them; after they are deleted, you can delete the "
            "custom key store."
        )
    del custom_key_stores(backend)[store.id]
