"""The six custom key store operations: fields, the connection state machine, deletion.

Rules cite the KMS API Reference text in botocore's KMS service model.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from reconciler.sandbox.seed import create_cloudhsm_cluster, create_vpc_endpoint_service
from tests.conftest import FROZEN_AT, connect_and_wait, store_state
from tests.sandbox.helpers import (
    ACCOUNT_ID,
    KEY_STORE_PASSWORD,
    REGION,
    XKS_ACCESS_KEY_ID,
    XKS_SECRET,
    describe_store,
    hsm_params,
    kms_error,
    vpc_params,
    xks_params,
)


# --- CreateCustomKeyStore / DescribeCustomKeyStores fields ----------------------------------


def test_create_returns_cks_id_of_17_hex_digits(kms):
    """CreateCustomKeyStore returns CustomKeyStoreId, "cks-" + 17 hex digits."""
    store_id = kms.create_custom_key_store(**xks_params("a"))["CustomKeyStoreId"]
    assert re.fullmatch(r"cks-[0-9a-f]{17}", store_id)


def test_new_store_is_disconnected_with_every_public_xks_field(kms):
    """DescribeCustomKeyStores: "Custom key stores have a DISCONNECTED connection state if the key
    store has never been connected"; XksProxyConfiguration carries Connectivity, AccessKeyId,
    UriEndpoint, UriPath; CreationDate comes from the emulator clock."""
    store_id = kms.create_custom_key_store(**xks_params("ext"))["CustomKeyStoreId"]
    entry = describe_store(kms, store_id)
    assert entry["CustomKeyStoreId"] == store_id
    assert entry["CustomKeyStoreName"] == "ext"
    assert entry["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert "ConnectionErrorCode" not in entry
    assert entry["CreationDate"] == FROZEN_AT
    assert entry["XksProxyConfiguration"] == {
        "Connectivity": "PUBLIC_ENDPOINT",
        "AccessKeyId": XKS_ACCESS_KEY_ID,
        "UriEndpoint": "https://proxy.example.com",
        "UriPath": "/kms/xks/v1",
    }
    assert "CloudHsmClusterId" not in entry and "TrustAnchorCertificate" not in entry


def test_vpc_store_shows_vpc_endpoint_service_name_and_owner(kms):
    """XksProxyConfigurationType.VpcEndpointServiceName/Owner "appears only when the external key
    store proxy uses an Amazon VPC endpoint service"; Owner defaults to the caller's account."""
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    store_id = kms.create_custom_key_store(**vpc_params("vpc", service))["CustomKeyStoreId"]
    proxy = describe_store(kms, store_id)["XksProxyConfiguration"]
    assert proxy["Connectivity"] == "VPC_ENDPOINT_SERVICE"
    assert proxy["VpcEndpointServiceName"] == service.service_name
    assert proxy["VpcEndpointServiceOwner"] == ACCOUNT_ID
    assert proxy["UriEndpoint"] == service.uri_endpoint


def test_cloudhsm_store_defaults_type_and_shows_cluster_and_trust_anchor(kms):
    """CreateCustomKeyStore: "The CustomKeyStoreType parameter is optional for CloudHSM key
    stores"; the entry shows CloudHsmClusterId and TrustAnchorCertificate."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    params = hsm_params("hsm", cluster_id)
    store_id = kms.create_custom_key_store(**params)["CustomKeyStoreId"]
    entry = describe_store(kms, store_id)
    assert entry["CustomKeyStoreType"] == "AWS_CLOUDHSM"
    assert entry["CloudHsmClusterId"] == cluster_id
    assert entry["TrustAnchorCertificate"] == params["TrustAnchorCertificate"]
    assert "XksProxyConfiguration" not in entry


def test_secrets_are_never_returned(kms):
    """KeyStorePassword and RawSecretAccessKey are never readable back."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    kms.create_custom_key_store(**hsm_params("hsm", cluster_id))
    kms.create_custom_key_store(**xks_params("ext"))
    body = json.dumps(kms.describe_custom_key_stores()["CustomKeyStores"], default=str)
    assert XKS_SECRET not in body and "RawSecretAccessKey" not in body
    assert KEY_STORE_PASSWORD not in body and "KeyStorePassword" not in body


def test_describe_by_name_and_by_id(kms):
    """DescribeCustomKeyStores: "use either the CustomKeyStoreName or CustomKeyStoreId"."""
    a = kms.create_custom_key_store(**xks_params("a", endpoint="https://a.example.com"))["CustomKeyStoreId"]
    b = kms.create_custom_key_store(**xks_params("b", endpoint="https://b.example.com"))["CustomKeyStoreId"]
    assert [s["CustomKeyStoreId"] for s in kms.describe_custom_key_stores(CustomKeyStoreName="b")["CustomKeyStores"]] == [b]
    assert [s["CustomKeyStoreName"] for s in kms.describe_custom_key_stores(CustomKeyStoreId=a)["CustomKeyStores"]] == ["a"]
    assert [s["CustomKeyStoreId"] for s in kms.describe_custom_key_stores()["CustomKeyStores"]] == [a, b]


# --- the connection state machine ------------------------------------------------------------


def test_connect_returns_at_once_then_connected_after_connect_delay(kms, sandbox, xks_store):
    """ConnectCustomKeyStore "starts the connection process, but it does not wait for it to
    complete": CONNECTING until connect_delay_seconds of emulator time have passed."""
    sandbox.connect_delay_seconds = 60
    store_id = xks_store()
    assert kms.connect_custom_key_store(CustomKeyStoreId=store_id)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert store_state(kms, store_id) == "CONNECTING"
    sandbox.clock.advance(59)
    assert store_state(kms, store_id) == "CONNECTING"
    sandbox.clock.advance(1)
    assert store_state(kms, store_id) == "CONNECTED"


def test_connect_with_zero_delay_connects_immediately(kms, sandbox, xks_store):
    sandbox.connect_delay_seconds = 0
    store_id = xks_store()
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id) == "CONNECTED"


def test_connect_on_connected_or_connecting_store_is_a_no_op(kms, sandbox, xks_store):
    """CustomKeyStoreInvalidStateException lists only DISCONNECTING and FAILED for Connect: "This
    operation is valid for all other ConnectionState values"."""
    store_id = xks_store()
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)  # CONNECTING: fine
    assert store_state(kms, store_id) == "CONNECTING"
    sandbox.clock.advance(sandbox.connect_delay_seconds)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)  # CONNECTED: fine
    assert store_state(kms, store_id) == "CONNECTED"


def test_connection_error_fault_ends_in_failed_with_error_code(kms, sandbox, xks_store):
    """ConnectionState FAILED + ConnectionErrorCode ("This field appears in the response only
    when the ConnectionState is FAILED")."""
    store_id = xks_store("flaky")
    sandbox.faults.connection_errors["flaky"] = "XKS_PROXY_TIMED_OUT"
    assert connect_and_wait(kms, sandbox, store_id) == "FAILED"
    assert describe_store(kms, store_id)["ConnectionErrorCode"] == "XKS_PROXY_TIMED_OUT"


def test_failed_store_is_repaired_by_disconnect_update_connect(kms, sandbox, xks_store):
    """ConnectCustomKeyStore: "To fix the failure, use the DisconnectCustomKeyStore operation to
    disconnect the custom key store, correct the error, use the UpdateCustomKeyStore operation if
    necessary, and then use ConnectCustomKeyStore again." Disconnect clears the error code."""
    sandbox.disconnect_delay_seconds = 0
    store_id = xks_store("flaky")
    sandbox.faults.connection_errors["flaky"] = "INVALID_CREDENTIALS"
    assert connect_and_wait(kms, sandbox, store_id) == "FAILED"
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    entry = describe_store(kms, store_id)
    assert entry["ConnectionState"] == "DISCONNECTED" and "ConnectionErrorCode" not in entry
    del sandbox.faults.connection_errors["flaky"]
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id,
        XksProxyAuthenticationCredential={"AccessKeyId": "ZYXWVUTSRQPONMLKJIHG", "RawSecretAccessKey": "b" * 43},
    )
    assert connect_and_wait(kms, sandbox, store_id) == "CONNECTED"


def test_disconnect_goes_through_disconnecting(kms, sandbox, xks_store):
    """DisconnectCustomKeyStore: DISCONNECTING, then DISCONNECTED after disconnect_delay_seconds."""
    sandbox.disconnect_delay_seconds = 10
    store_id = xks_store(connect=True)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert store_state(kms, store_id) == "DISCONNECTING"
    sandbox.clock.advance(10)
    assert store_state(kms, store_id) == "DISCONNECTED"


def test_disconnect_while_connecting_is_allowed(kms, sandbox, xks_store):
    """Disconnect is refused only in DISCONNECTING or DISCONNECTED."""
    store_id = xks_store()
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    sandbox.clock.advance(max(sandbox.connect_delay_seconds, sandbox.disconnect_delay_seconds))
    assert store_state(kms, store_id) == "DISCONNECTED"


def test_cloudhsm_cluster_that_vanished_fails_connect_with_cluster_not_found(kms, sandbox, hsm_store):
    """ConnectionErrorCode CLUSTER_NOT_FOUND: "KMS cannot find the CloudHSM cluster with the
    specified cluster ID"."""
    from reconciler.sandbox.seed import delete_cloudhsm_cluster

    store_id, cluster_id = hsm_store()
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    delete_cloudhsm_cluster(ACCOUNT_ID, REGION, cluster_id)
    sandbox.clock.advance(sandbox.connect_delay_seconds)
    entry = describe_store(kms, store_id)
    assert (entry["ConnectionState"], entry["ConnectionErrorCode"]) == ("FAILED", "CLUSTER_NOT_FOUND")


def test_cloudhsm_cluster_without_active_hsms_fails_with_insufficient_hsms(kms, sandbox, hsm_store):
    """ConnectionErrorCode INSUFFICIENT_CLOUDHSM_HSMS: "The associated CloudHSM cluster does not
    contain any active HSMs"."""
    from reconciler.sandbox.seed import set_active_hsms

    store_id, cluster_id = hsm_store()
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    set_active_hsms(ACCOUNT_ID, REGION, cluster_id, 0)
    sandbox.clock.advance(sandbox.connect_delay_seconds)
    assert describe_store(kms, store_id)["ConnectionErrorCode"] == "INSUFFICIENT_CLOUDHSM_HSMS"


def test_vpc_endpoint_service_that_vanished_fails_connect(kms, sandbox, xks_store):
    """ConnectionErrorCode XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND."""
    from reconciler.sandbox.seed import delete_vpc_endpoint_service

    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    store_id = xks_store(connectivity="VPC_ENDPOINT_SERVICE", vpc_service=service)
    delete_vpc_endpoint_service(ACCOUNT_ID, REGION, service.service_id)
    assert connect_and_wait(kms, sandbox, store_id) == "FAILED"
    assert describe_store(kms, store_id)["ConnectionErrorCode"] == "XKS_VPC_ENDPOINT_SERVICE_NOT_FOUND"


def test_vpc_endpoint_service_that_now_requires_acceptance_fails_with_invalid_configuration(kms, sandbox, xks_store):
    """XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION: "It must not require acceptance of
    connection requests"."""
    from reconciler.sandbox.seed import get_vpc_endpoint_service

    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    store_id = xks_store(connectivity="VPC_ENDPOINT_SERVICE", vpc_service=service)
    get_vpc_endpoint_service(ACCOUNT_ID, REGION, service.service_id).acceptance_required = True
    assert connect_and_wait(kms, sandbox, store_id) == "FAILED"
    assert describe_store(kms, store_id)["ConnectionErrorCode"] == "XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION"


# --- UpdateCustomKeyStore --------------------------------------------------------------------


def test_update_xks_name_credential_and_path_while_connected(kms, sandbox, xks_store):
    """UpdateCustomKeyStore: "you can update the CustomKeyStoreName, XksProxyAuthenticationCredential,
    and XksProxyUriPath of an external key store when it is in the CONNECTED or DISCONNECTED state"."""
    store_id = xks_store(connect=True)
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id,
        NewCustomKeyStoreName="renamed",
        XksProxyUriPath="/tenant-a/kms/xks/v1",
        XksProxyAuthenticationCredential={"AccessKeyId": "ZYXWVUTSRQPONMLKJIHG", "RawSecretAccessKey": "b" * 43},
    )
    entry = describe_store(kms, store_id)
    assert entry["CustomKeyStoreName"] == "renamed"
    assert entry["ConnectionState"] == "CONNECTED"
    assert entry["XksProxyConfiguration"]["UriPath"] == "/tenant-a/kms/xks/v1"
    assert entry["XksProxyConfiguration"]["AccessKeyId"] == "ZYXWVUTSRQPONMLKJIHG"


def test_update_xks_endpoint_while_connected_is_refused(kms, xks_store):
    """UpdateCustomKeyStore: "To update most properties of an external key store, the
    ConnectionState of the external key store must be DISCONNECTED" (XksProxyUriEndpoint:
    "To change this value, the external key store must be disconnected")."""
    store_id = xks_store(connect=True)
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyUriEndpoint="https://other.example.com")


def test_update_cloudhsm_name_while_connected_but_password_needs_disconnected(kms, hsm_store):
    """UpdateCustomKeyStore: "you can update the CustomKeyStoreName of an AWS CloudHSM key store
    when it is in the CONNECTED or DISCONNECTED state"; KeyStorePassword: "To change this value,
    the CloudHSM key store must be disconnected"."""
    store_id, _ = hsm_store(connect=True)
    kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="hsm-renamed")
    assert describe_store(kms, store_id)["CustomKeyStoreName"] == "hsm-renamed"
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword="another-password")


def test_update_refused_while_connecting_even_for_the_name(kms, xks_store):
    """Name/credential/path may change only "when it is in the CONNECTED or DISCONNECTED state"."""
    store_id = xks_store()
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, NewCustomKeyStoreName="x")


def test_update_switches_public_store_to_vpc_with_new_endpoint_and_service(kms, xks_store):
    """XksProxyConnectivity: "If you change the XksProxyConnectivity to VPC_ENDPOINT_SERVICE, you
    must also change the XksProxyUriEndpoint and add an XksProxyVpcEndpointServiceName value"."""
    store_id = xks_store()
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    kms.update_custom_key_store(
        CustomKeyStoreId=store_id,
        XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
        XksProxyUriEndpoint=service.uri_endpoint,
        XksProxyVpcEndpointServiceName=service.service_name,
    )
    proxy = describe_store(kms, store_id)["XksProxyConfiguration"]
    assert proxy["Connectivity"] == "VPC_ENDPOINT_SERVICE"
    assert proxy["VpcEndpointServiceName"] == service.service_name


def test_update_switches_vpc_store_to_public_clearing_the_service_with_empty_string(raw_kms, xks_store):
    """XksProxyConnectivity: "If you change the XksProxyConnectivity to PUBLIC_ENDPOINT, you must
    also change the XksProxyUriEndpoint and specify a null or empty string for the
    XksProxyVpcEndpointServiceName value"."""
    store_id = xks_store(connectivity="VPC_ENDPOINT_SERVICE")
    raw_kms.update_custom_key_store(
        CustomKeyStoreId=store_id,
        XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyUriEndpoint="https://public-proxy.example.com",
        XksProxyVpcEndpointServiceName="",
    )
    proxy = describe_store(raw_kms, store_id)["XksProxyConfiguration"]
    assert proxy["Connectivity"] == "PUBLIC_ENDPOINT"
    assert "VpcEndpointServiceName" not in proxy and "VpcEndpointServiceOwner" not in proxy


def test_update_switching_connectivity_without_new_endpoint_is_a_validation_error(kms, xks_store):
    store_id = xks_store(connectivity="VPC_ENDPOINT_SERVICE")
    with kms_error("ValidationException", message_contains="XksProxyUriEndpoint"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyConnectivity="PUBLIC_ENDPOINT")


def test_update_cloudhsm_store_to_related_cluster(kms, hsm_store):
    """UpdateCustomKeyStore CloudHsmClusterId: "Enter the cluster ID of ... a cluster that shares
    a backup history and has the same cluster certificate as the original cluster"."""
    store_id, cluster_id = hsm_store()
    related = create_cloudhsm_cluster(ACCOUNT_ID, REGION, related_to=cluster_id)
    kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=related, KeyStorePassword="new-password")
    assert describe_store(kms, store_id)["CloudHsmClusterId"] == related


def test_update_with_fields_of_the_other_store_type_is_a_validation_error(kms, hsm_store, xks_store):
    """"This parameter is valid only for custom key stores with a CustomKeyStoreType of ..."."""
    hsm_id, _ = hsm_store()
    xks_id = xks_store()
    with kms_error("ValidationException"):
        kms.update_custom_key_store(CustomKeyStoreId=hsm_id, XksProxyUriPath="/kms/xks/v2")
    with kms_error("ValidationException"):
        kms.update_custom_key_store(CustomKeyStoreId=xks_id, KeyStorePassword="password1")


# --- DeleteCustomKeyStore --------------------------------------------------------------------


def test_delete_disconnected_empty_store_then_describe_says_not_found(kms, xks_store):
    """Deleting an external key store (seed document): after DeleteCustomKeyStore,
    DescribeCustomKeyStores no longer lists it and its id or name gives
    CustomKeyStoreNotFoundException."""
    store_id = xks_store("doomed")
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    with kms_error("CustomKeyStoreNotFoundException"):
        kms.describe_custom_key_stores(CustomKeyStoreId=store_id)
    with kms_error("CustomKeyStoreNotFoundException"):
        kms.describe_custom_key_stores(CustomKeyStoreName="doomed")


def test_store_name_is_free_again_after_delete(kms, xks_store):
    store_id = xks_store("reused")
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    xks_store("reused")


def test_decommission_flow_schedule_disconnect_wait_delete(kms, sandbox, xks_store):
    """The decommissioning procedure: ScheduleKeyDeletion for every key, DisconnectCustomKeyStore,
    wait until every DeletionDate has passed, DeleteCustomKeyStore."""
    store_id = xks_store(connect=True)
    key_ids = [
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId=f"ext-{i}")["KeyMetadata"]["KeyId"]
        for i in range(3)
    ]
    dates = [kms.schedule_key_deletion(KeyId=k, PendingWindowInDays=7)["DeletionDate"] for k in key_ids]
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    sandbox.clock.advance(sandbox.disconnect_delay_seconds)
    with kms_error("CustomKeyStoreHasCMKsException"):
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    sandbox.clock.advance(7 * 86400)
    assert all(d <= sandbox.clock.now() for d in dates)
    kms.delete_custom_key_store(CustomKeyStoreId=store_id)
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    assert datetime(2026, 1, 8, tzinfo=timezone.utc) <= sandbox.clock.now()
