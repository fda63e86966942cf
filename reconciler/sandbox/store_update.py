"""UpdateCustomKeyStore: what may change, and in which connection state.

UpdateCustomKeyStore doc: "you can update the CustomKeyStoreName of an AWS CloudHSM key store when
it is in the CONNECTED or DISCONNECTED state" / "you can update the CustomKeyStoreName,
XksProxyAuthenticationCredential, and XksProxyUriPath of an external key store when it is in the
CONNECTED or DISCONNECTED state". Every other property needs DISCONNECTED. docs/kms-rules.md,
"Updating a store", has the rest.
"""

from __future__ import annotations

from moto.kms.models import KmsBackend

from reconciler.sandbox import backing, xks_link
from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.connection import current_store
from reconciler.sandbox.state import (
    CLOUDHSM,
    CONNECTED,
    DISCONNECTED,
    EXTERNAL_KEY_STORE,
    PUBLIC_ENDPOINT,
    VPC_ENDPOINT_SERVICE,
    invalid_state,
    validation,
)
from reconciler.sandbox.stores import check_name_free, check_vpc_service, check_xks_uri_free, raise_proxy_fault

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
    store = current_store(backend, custom_key_store_id)
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
            raise validation(
                f"{', '.join(wrong)} is valid only for custom key stores with a "
                "CustomKeyStoreType of EXTERNAL_KEY_STORE."
            )
    else:
        wrong = sorted(given & set(CLOUDHSM_ONLY_FIELDS))
        if wrong:
            raise validation(
                f"{', '.join(wrong)} is valid only for custom key stores with a "
                "CustomKeyStoreType of AWS_CLOUDHSM."
            )
    if credential_given and (xks_proxy_access_key_id is None or xks_proxy_raw_secret_access_key is None):
        # XksProxyAuthenticationCredential doc: "You must specify both the AccessKeyId and
        # SecretAccessKey value in the authentication credential, even if you are only updating
        # one value."
        raise validation(
            "XksProxyAuthenticationCredential requires both AccessKeyId and RawSecretAccessKey."
        )

    # Connection state (UpdateCustomKeyStore doc and CustomKeyStoreInvalidStateException).
    connected_ok = UPDATABLE_WHILE_CONNECTED[store.store_type]
    needs_disconnected = sorted(given - connected_ok)
    if needs_disconnected and store.connection_state != DISCONNECTED:
        raise invalid_state(
            store,
            "UpdateCustomKeyStore",
            f"to change {', '.join(needs_disconnected)} the store must be DISCONNECTED",
        )
    if given and store.connection_state not in (CONNECTED, DISCONNECTED):
        raise invalid_state(
            store,
            "UpdateCustomKeyStore",
            "the store must be CONNECTED or DISCONNECTED",
        )

    if new_custom_key_store_name is not None and new_custom_key_store_name != store.name:
        check_name_free(backend, new_custom_key_store_name, exclude=store)

    if store.is_cloudhsm:
        if cloud_hsm_cluster_id is not None and cloud_hsm_cluster_id != store.cloud_hsm_cluster_id:
            cluster = backing.find_cluster(backend.account_id, backend.region_name, cloud_hsm_cluster_id)
            if cluster is None:
                raise exc.CloudHsmClusterNotFoundException(
                    f"KMS cannot find the CloudHSM cluster with cluster ID {cloud_hsm_cluster_id}."
                )
            # CloudHsmClusterNotRelatedException: "the specified CloudHSM cluster has a
            # different cluster certificate than the original cluster"
            original = store.cluster_certificate
            if not original or backing.cluster_certificate(cluster) != original:
                raise exc.CloudHsmClusterNotRelatedException(
                    f"CloudHSM cluster {cloud_hsm_cluster_id} does not share a backup history "
                    f"with cluster {store.cloud_hsm_cluster_id} of custom key store {store.id}."
                )
            if cluster.state != "ACTIVE":
                raise exc.CloudHsmClusterNotActiveException(
                    f"CloudHSM cluster {cloud_hsm_cluster_id} is {cluster.state}, not ACTIVE."
                )
            problem = backing.cluster_configuration_problem(cluster, min_active_hsms=2)
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
            raise validation(
                f"If you change the XksProxyConnectivity to {connectivity}, you must also change "
                "the XksProxyUriEndpoint."
            )
        if connectivity == VPC_ENDPOINT_SERVICE and not xks_proxy_vpc_endpoint_service_name:
            raise validation(
                "If you change the XksProxyConnectivity to VPC_ENDPOINT_SERVICE, you must also "
                "add an XksProxyVpcEndpointServiceName value."
            )
        if connectivity == PUBLIC_ENDPOINT and xks_proxy_vpc_endpoint_service_name:
            raise validation(
                "If you change the XksProxyConnectivity to PUBLIC_ENDPOINT, you must specify a "
                "null or empty string for the XksProxyVpcEndpointServiceName value."
            )
    if connectivity == PUBLIC_ENDPOINT:
        if xks_proxy_vpc_endpoint_service_name or xks_proxy_vpc_endpoint_service_owner:
            raise validation(
                "XksProxyVpcEndpointServiceName and XksProxyVpcEndpointServiceOwner are valid "
                "only when XksProxyConnectivity is VPC_ENDPOINT_SERVICE."
            )
        service_name, owner = None, None
    else:
        if not service_name:
            raise validation(
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
        check_xks_uri_free(
            backend, connectivity=connectivity, uri_endpoint=uri_endpoint, uri_path=uri_path, exclude=store
        )
        if connectivity == VPC_ENDPOINT_SERVICE:
            assert service_name and owner
            check_vpc_service(
                backend, service_name=service_name, owner=owner, uri_endpoint=uri_endpoint, exclude=store
            )
    if connectivity == PUBLIC_ENDPOINT and (proxy_changed or credential_given):
        raise_proxy_fault(store.name, new_custom_key_store_name)
        xks_link.check_store(store, "UpdateCustomKeyStore", uri_endpoint=uri_endpoint, uri_path=uri_path,
                             access_key_id=xks_proxy_access_key_id if credential_given else None,
                             secret=xks_proxy_raw_secret_access_key if credential_given else None)

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
