"""Handlers of the six custom key store operations (moto has none of them).

Each reads the checked input and calls the rules (:mod:`reconciler.sandbox.stores`,
:mod:`reconciler.sandbox.store_update`, :mod:`reconciler.sandbox.connection`); the protocol layer
writes the result with the operation's output shape.
"""

from __future__ import annotations

from typing import Any

from reconciler.sandbox import connection, paging, store_update, stores
from reconciler.sandbox.calls import backend_of


def _credential(params: dict[str, Any]) -> dict[str, Any]:
    credential = params.get("XksProxyAuthenticationCredential") or {}
    return {
        "xks_proxy_access_key_id": credential.get("AccessKeyId"),
        "xks_proxy_raw_secret_access_key": credential.get("RawSecretAccessKey"),
    }


def _xks(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "xks_proxy_connectivity": params.get("XksProxyConnectivity"),
        "xks_proxy_uri_endpoint": params.get("XksProxyUriEndpoint"),
        "xks_proxy_uri_path": params.get("XksProxyUriPath"),
        "xks_proxy_vpc_endpoint_service_name": params.get("XksProxyVpcEndpointServiceName"),
        "xks_proxy_vpc_endpoint_service_owner": params.get("XksProxyVpcEndpointServiceOwner"),
        **_credential(params),
    }


def create_custom_key_store(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    store = stores.create_custom_key_store(
        backend_of(response),
        custom_key_store_name=params["CustomKeyStoreName"],
        custom_key_store_type=params.get("CustomKeyStoreType"),
        cloud_hsm_cluster_id=params.get("CloudHsmClusterId"),
        trust_anchor_certificate=params.get("TrustAnchorCertificate"),
        key_store_password=params.get("KeyStorePassword"),
        **_xks(params),
    )
    return {"CustomKeyStoreId": store.id}


def describe_custom_key_stores(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Limit has no default in the API text; the emulator returns up to 1000 stores per page
    (docs/emulator.md, "Where the API text is silent")."""
    found = stores.describe_custom_key_stores(
        backend_of(response),
        custom_key_store_id=params.get("CustomKeyStoreId"),
        custom_key_store_name=params.get("CustomKeyStoreName"),
    )
    page, next_marker = paging.paginate(
        found, lambda s: s.id, kind="DescribeCustomKeyStores", limit=params.get("Limit") or 1000,
        marker=params.get("Marker"), params=params,
    )
    return paging.page_result("CustomKeyStores", [s.to_entry() for s in page], next_marker)


def connect_custom_key_store(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    connection.connect_custom_key_store(backend_of(response), params["CustomKeyStoreId"])
    return {}


def disconnect_custom_key_store(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    connection.disconnect_custom_key_store(backend_of(response), params["CustomKeyStoreId"])
    return {}


def update_custom_key_store(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    store_update.update_custom_key_store(
        backend_of(response),
        params["CustomKeyStoreId"],
        new_custom_key_store_name=params.get("NewCustomKeyStoreName"),
        key_store_password=params.get("KeyStorePassword"),
        cloud_hsm_cluster_id=params.get("CloudHsmClusterId"),
        **_xks(params),
    )
    return {}


def delete_custom_key_store(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    stores.delete_custom_key_store(backend_of(response), params["CustomKeyStoreId"])
    return {}


HANDLERS = {
    "CreateCustomKeyStore": create_custom_key_store,
    "DescribeCustomKeyStores": describe_custom_key_stores,
    "ConnectCustomKeyStore": connect_custom_key_store,
    "DisconnectCustomKeyStore": disconnect_custom_key_store,
    "UpdateCustomKeyStore": update_custom_key_store,
    "DeleteCustomKeyStore": delete_custom_key_store,
}
