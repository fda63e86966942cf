"""Every exception in the error lists of the six custom key store operations, and the custom key
store exceptions of CreateKey, raised under the conditions the API Reference gives.

Each test declares what it covers with ``@covers(operation, exception)``; the last test checks
the declarations against the botocore model, so a new error in the model shows up as a gap.
"""

from __future__ import annotations

from typing import Any, Callable

import botocore.session
import pytest

from reconciler.sandbox.seed import (
    create_cloudhsm_cluster,
    create_vpc_endpoint_service,
    get_cloudhsm_cluster,
    set_active_hsms,
)
from tests.conftest import connect_and_wait
from tests.sandbox.helpers import (
    ACCOUNT_ID,
    REGION,
    hsm_params,
    kms_error,
    vpc_params,
    xks_params,
)

COVERED: set[tuple[str, str]] = set()


def covers(*pairs: tuple[str, str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(test: Callable[..., Any]) -> Callable[..., Any]:
        COVERED.update(pairs)
        return test

    return mark


CREATE = "CreateCustomKeyStore"
UPDATE = "UpdateCustomKeyStore"
CONNECT = "ConnectCustomKeyStore"
DISCONNECT = "DisconnectCustomKeyStore"
DELETE = "DeleteCustomKeyStore"
DESCRIBE = "DescribeCustomKeyStores"
CREATE_KEY = "CreateKey"
SIX = (CREATE, UPDATE, CONNECT, DISCONNECT, DELETE, DESCRIBE)
CUSTOM_KEY_STORE_ERRORS_OF_CREATE_KEY = {
    "CustomKeyStoreNotFoundException",
    "CustomKeyStoreInvalidStateException",
    "CloudHsmClusterInvalidConfigurationException",
    "XksKeyInvalidConfigurationException",
    "XksKeyAlreadyInUseException",
    "XksKeyNotFoundException",
    "UnsupportedOperationException",
}


# --- store names and proxy URIs --------------------------------------------------------------


@covers((CREATE, "CustomKeyStoreNameInUseException"))
def test_create_with_a_name_in_use_is_refused(kms):
    """CustomKeyStoreNameInUseException: "the specified custom key store name is already assigned
    to another custom key store in the account"."""
    kms.create_custom_key_store(**xks_params("same", endpoint="https://a.example.com"))
    with kms_error("CustomKeyStoreNameInUseException"):
        kms.create_custom_key_store(**xks_params("same", endpoint="https://b.example.com"))


@covers((UPDATE, "CustomKeyStoreNameInUseException"))
def test_rename_to_a_name_in_use_is_refused(kms, xks_store):
    xks_store("first")
    second = xks_store("second")
    with kms_error("CustomKeyStoreNameInUseException"):
        kms.update_custom_key_store(CustomKeyStoreId=second, NewCustomKeyStoreName="first")


@covers((CREATE, "XksProxyUriInUseException"))
def test_create_with_same_endpoint_and_path_is_refused(kms):
    """XksProxyUriInUseException: "The combined XksProxyUriEndpoint and XksProxyUriPath values must
    be unique in the Amazon Web Services account and Region"."""
    kms.create_custom_key_store(**xks_params("a"))
    with kms_error("XksProxyUriInUseException"):
        kms.create_custom_key_store(**xks_params("b"))


def test_two_public_stores_may_share_an_endpoint_with_different_paths(kms):
    kms.create_custom_key_store(**xks_params("a", path="/tenant-a/kms/xks/v1"))
    kms.create_custom_key_store(**xks_params("b", path="/tenant-b/kms/xks/v1"))


@covers((UPDATE, "XksProxyUriInUseException"))
def test_update_path_to_another_stores_uri_is_refused(kms):
    kms.create_custom_key_store(**xks_params("a", path="/a/kms/xks/v1"))
    b = kms.create_custom_key_store(**xks_params("b", path="/b/kms/xks/v1"))["CustomKeyStoreId"]
    with kms_error("XksProxyUriInUseException"):
        kms.update_custom_key_store(CustomKeyStoreId=b, XksProxyUriPath="/a/kms/xks/v1")


@covers((CREATE, "XksProxyUriEndpointInUseException"))
def test_public_store_cannot_use_the_endpoint_of_a_vpc_store(kms):
    """XksProxyUriEndpoint: "An external key store with PUBLIC_ENDPOINT connectivity cannot use
    the same XksProxyUriEndpoint value as an external key store with VPC_ENDPOINT_SERVICE
    connectivity in this Amazon Web Services Region"."""
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    kms.create_custom_key_store(**vpc_params("vpc", service))
    with kms_error("XksProxyUriEndpointInUseException"):
        kms.create_custom_key_store(**xks_params("public", endpoint=service.uri_endpoint, path="/other/kms/xks/v1"))


def test_each_vpc_store_needs_its_own_private_dns_name(kms):
    """XksProxyUriEndpoint: "Each external key store with VPC_ENDPOINT_SERVICE connectivity must
    have its own private DNS name"."""
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION, private_dns_name="proxy.example.com")
    other = create_vpc_endpoint_service(ACCOUNT_ID, REGION, private_dns_name="proxy.example.com")
    kms.create_custom_key_store(**vpc_params("vpc-1", service))
    with kms_error("XksProxyUriEndpointInUseException"):
        kms.create_custom_key_store(**vpc_params("vpc-2", other, XksProxyUriPath="/other/kms/xks/v1"))


@covers((UPDATE, "XksProxyUriEndpointInUseException"))
def test_update_public_store_to_a_vpc_stores_endpoint_is_refused(kms, xks_store):
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    xks_store(connectivity="VPC_ENDPOINT_SERVICE", vpc_service=service)
    public = xks_store(uri_path="/public/kms/xks/v1")
    with kms_error("XksProxyUriEndpointInUseException"):
        kms.update_custom_key_store(CustomKeyStoreId=public, XksProxyUriEndpoint=service.uri_endpoint)


# --- VPC endpoint services -------------------------------------------------------------------


@covers((CREATE, "XksProxyVpcEndpointServiceInUseException"))
def test_one_vpc_endpoint_service_per_store(kms):
    """XksProxyVpcEndpointServiceInUseException: "Each external key store in a Region must use a
    different Amazon VPC endpoint service"."""
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    kms.create_custom_key_store(**vpc_params("vpc-1", service))
    with kms_error("XksProxyVpcEndpointServiceInUseException"):
        kms.create_custom_key_store(
            **vpc_params("vpc-2", service, XksProxyUriEndpoint="https://other.example.com")
        )


@covers((UPDATE, "XksProxyVpcEndpointServiceInUseException"))
def test_update_to_another_stores_vpc_endpoint_service_is_refused(kms, xks_store):
    taken = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    xks_store(connectivity="VPC_ENDPOINT_SERVICE", vpc_service=taken)
    mine = xks_store(connectivity="VPC_ENDPOINT_SERVICE")
    with kms_error("XksProxyVpcEndpointServiceInUseException"):
        kms.update_custom_key_store(CustomKeyStoreId=mine, XksProxyVpcEndpointServiceName=taken.service_name)


@covers((CREATE, "XksProxyVpcEndpointServiceNotFoundException"))
def test_unknown_vpc_endpoint_service_is_not_found(kms):
    """XksProxyVpcEndpointServiceNotFoundException: "KMS could not find the specified VPC endpoint
    service"."""
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    params = vpc_params("vpc", service, XksProxyVpcEndpointServiceName=f"com.amazonaws.vpce.{REGION}.vpce-svc-0000000000000000a")
    with kms_error("XksProxyVpcEndpointServiceNotFoundException"):
        kms.create_custom_key_store(**params)


def test_vpc_endpoint_service_not_allowing_the_kms_principal_is_not_found(kms):
    """XksProxyVpcEndpointServiceNotFoundException: "confirm that the Allow principals list for the
    VPC endpoint service includes the KMS service principal for the Region, such as
    cks.kms.us-east-1.amazonaws.com"."""
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION, allowed_principals=[])
    with kms_error("XksProxyVpcEndpointServiceNotFoundException"):
        kms.create_custom_key_store(**vpc_params("vpc", service))


@covers((UPDATE, "XksProxyVpcEndpointServiceNotFoundException"))
def test_update_to_unknown_vpc_endpoint_service_is_not_found(kms, xks_store):
    store_id = xks_store(connectivity="VPC_ENDPOINT_SERVICE")
    with kms_error("XksProxyVpcEndpointServiceNotFoundException"):
        kms.update_custom_key_store(
            CustomKeyStoreId=store_id,
            XksProxyVpcEndpointServiceName=f"com.amazonaws.vpce.{REGION}.vpce-svc-0000000000000000b",
        )


@covers((CREATE, "XksProxyVpcEndpointServiceInvalidConfigurationException"))
@pytest.mark.parametrize(
    "requirement, options",
    [
        ("must not require acceptance of connection requests", {"acceptance_required": True}),
        ("must have a private DNS name", {"private_dns_name": ""}),
        ("verification status of verified", {"private_dns_verified": False}),
        ("at least two subnets, each in a different Availability Zone", {"availability_zones": ["us-east-1a"]}),
        ("endpoint service for interface endpoints", {"gateway": True}),
    ],
)
def test_vpc_endpoint_service_must_meet_the_xks_requirements(kms, requirement, options):
    """XksProxyVpcEndpointServiceInvalidConfigurationException, with the requirements listed under
    XKS_VPC_ENDPOINT_SERVICE_INVALID_CONFIGURATION."""
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION, **options)
    params = vpc_params("vpc", service, XksProxyUriEndpoint="https://proxy.example.com")
    with kms_error("XksProxyVpcEndpointServiceInvalidConfigurationException", message_contains=requirement):
        kms.create_custom_key_store(**params)


def test_vpc_store_endpoint_must_be_the_private_dns_name(kms):
    """XksProxyUriEndpoint: "For external key stores with XksProxyConnectivity value of
    VPC_ENDPOINT_SERVICE, specify https:// followed by the private DNS name"."""
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    with kms_error("XksProxyVpcEndpointServiceInvalidConfigurationException", message_contains="private DNS name"):
        kms.create_custom_key_store(**vpc_params("vpc", service, XksProxyUriEndpoint="https://elsewhere.example.com"))


@covers((UPDATE, "XksProxyVpcEndpointServiceInvalidConfigurationException"))
def test_update_to_vpc_endpoint_service_requiring_acceptance_is_refused(kms, xks_store):
    store_id = xks_store(connectivity="VPC_ENDPOINT_SERVICE")
    bad = create_vpc_endpoint_service(ACCOUNT_ID, REGION, acceptance_required=True)
    with kms_error("XksProxyVpcEndpointServiceInvalidConfigurationException"):
        kms.update_custom_key_store(
            CustomKeyStoreId=store_id,
            XksProxyVpcEndpointServiceName=bad.service_name,
            XksProxyUriEndpoint=bad.uri_endpoint,
        )


# --- XKS proxy faults (PUBLIC_ENDPOINT stores: KMS contacts the proxy at Create/Update) --------

PROXY_FAULTS = (
    "XksProxyUriUnreachableException",
    "XksProxyIncorrectAuthenticationCredentialException",
    "XksProxyInvalidResponseException",
    "XksProxyInvalidConfigurationException",
)


@covers(*[(CREATE, name) for name in PROXY_FAULTS])
@pytest.mark.parametrize("fault", PROXY_FAULTS)
def test_create_public_store_surfaces_proxy_fault(kms, sandbox, fault):
    """XksProxyUriEndpoint: "For external key stores with PUBLIC_ENDPOINT connectivity, this
    endpoint must be reachable before you create the custom key store. KMS connects to the
    external key store proxy while creating the custom key store." """
    sandbox.faults.proxy_errors["broken"] = fault
    with kms_error(fault):
        kms.create_custom_key_store(**xks_params("broken"))
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_vpc_store_does_not_contact_the_proxy_at_create(kms, sandbox):
    """"For external key stores with VPC_ENDPOINT_SERVICE connectivity, KMS connects when you call
    the ConnectCustomKeyStore operation." """
    sandbox.faults.proxy_errors["vpc"] = "XksProxyUriUnreachableException"
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    kms.create_custom_key_store(**vpc_params("vpc", service))


@covers(*[(UPDATE, name) for name in PROXY_FAULTS])
@pytest.mark.parametrize("fault", PROXY_FAULTS)
def test_update_public_store_proxy_settings_surfaces_proxy_fault(kms, sandbox, xks_store, fault):
    """UpdateCustomKeyStore: "before you change the XksProxyUriPath value, verify that the external
    key store proxy is reachable at the new path"."""
    store_id = xks_store("proxied")
    sandbox.faults.proxy_errors["proxied"] = fault
    with kms_error(fault):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyUriPath="/v2path/kms/xks/v1")
    assert kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]["XksProxyConfiguration"]["UriPath"] == "/kms/xks/v1"


# --- CloudHSM clusters -----------------------------------------------------------------------


@covers((CREATE, "CloudHsmClusterNotFoundException"))
def test_create_with_unknown_cluster_is_not_found(kms):
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    with kms_error("CloudHsmClusterNotFoundException"):
        kms.create_custom_key_store(**hsm_params("hsm", cluster_id, CloudHsmClusterId="cluster-234567abcde"))


@covers((CREATE, "CloudHsmClusterInUseException"))
def test_one_cloudhsm_cluster_per_store(kms):
    """CloudHsmClusterInUseException: "Each CloudHSM key store in the account must be associated
    with a different CloudHSM cluster"."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    kms.create_custom_key_store(**hsm_params("hsm-1", cluster_id))
    with kms_error("CloudHsmClusterInUseException"):
        kms.create_custom_key_store(**hsm_params("hsm-2", cluster_id))


def test_cluster_sharing_backup_history_with_a_stores_cluster_is_in_use(kms):
    """CloudHsmClusterInUseException: "... or it shares a backup history with an CloudHSM key store
    in the account"."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    related = create_cloudhsm_cluster(ACCOUNT_ID, REGION, related_to=cluster_id)
    kms.create_custom_key_store(**hsm_params("hsm-1", cluster_id))
    with kms_error("CloudHsmClusterInUseException"):
        kms.create_custom_key_store(**hsm_params("hsm-2", related))


@covers((CREATE, "CloudHsmClusterNotActiveException"))
def test_create_with_uninitialized_cluster_is_not_active(kms):
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION, state="INITIALIZED")
    with kms_error("CloudHsmClusterNotActiveException"):
        kms.create_custom_key_store(**hsm_params("hsm", cluster_id))


@covers((CREATE, "IncorrectTrustAnchorException"))
def test_create_with_another_clusters_trust_anchor_is_refused(kms):
    """IncorrectTrustAnchorException: "the trust anchor certificate in the request to create an
    CloudHSM key store is not the trust anchor certificate for the specified CloudHSM cluster"."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    other = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    params = hsm_params("hsm", cluster_id, TrustAnchorCertificate=hsm_params("x", other)["TrustAnchorCertificate"])
    with kms_error("IncorrectTrustAnchorException"):
        kms.create_custom_key_store(**params)


@covers((CREATE, "CloudHsmClusterInvalidConfigurationException"))
def test_create_needs_two_active_hsms(kms):
    """CloudHsmClusterInvalidConfigurationException: "For the CreateCustomKeyStore,
    UpdateCustomKeyStore, and CreateKey operations, the CloudHSM cluster must have at least two
    active HSMs, each in a different Availability Zone"."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION, hsm_count=1)
    with kms_error("CloudHsmClusterInvalidConfigurationException"):
        kms.create_custom_key_store(**hsm_params("hsm", cluster_id))


def test_create_needs_subnets_in_two_availability_zones(kms):
    """"The CloudHSM cluster must be configured with private subnets in at least two different
    Availability Zones in the Region." """
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION, availability_zones=["us-east-1a"])
    with kms_error("CloudHsmClusterInvalidConfigurationException", message_contains="two different Availability Zones"):
        kms.create_custom_key_store(**hsm_params("hsm", cluster_id))


@covers((UPDATE, "CloudHsmClusterNotFoundException"))
def test_update_to_unknown_cluster_is_not_found(kms, hsm_store):
    store_id, _ = hsm_store()
    with kms_error("CloudHsmClusterNotFoundException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId="cluster-234567abcde")


@covers((UPDATE, "CloudHsmClusterNotRelatedException"))
def test_update_to_unrelated_cluster_is_refused(kms, hsm_store):
    """CloudHsmClusterNotRelatedException: "You cannot use the operation to specify an unrelated
    cluster for an CloudHSM key store"."""
    store_id, _ = hsm_store()
    unrelated = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    with kms_error("CloudHsmClusterNotRelatedException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=unrelated)


@covers((UPDATE, "CloudHsmClusterNotActiveException"))
def test_update_to_related_but_inactive_cluster_is_refused(kms, hsm_store):
    store_id, cluster_id = hsm_store()
    related = create_cloudhsm_cluster(ACCOUNT_ID, REGION, related_to=cluster_id, state="UPDATE_IN_PROGRESS")
    with kms_error("CloudHsmClusterNotActiveException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=related)


@covers((UPDATE, "CloudHsmClusterInvalidConfigurationException"))
def test_update_to_related_cluster_with_one_hsm_is_refused(kms, hsm_store):
    store_id, cluster_id = hsm_store()
    related = create_cloudhsm_cluster(ACCOUNT_ID, REGION, related_to=cluster_id, hsm_count=1)
    with kms_error("CloudHsmClusterInvalidConfigurationException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, CloudHsmClusterId=related)


@covers((CONNECT, "CloudHsmClusterNotActiveException"))
def test_connect_with_inactive_cluster_is_refused(kms, hsm_store):
    store_id, cluster_id = hsm_store()
    get_cloudhsm_cluster(ACCOUNT_ID, REGION, cluster_id).state = "DEGRADED"
    with kms_error("CloudHsmClusterNotActiveException"):
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)


@covers((CONNECT, "CloudHsmClusterInvalidConfigurationException"))
def test_connect_needs_at_least_one_active_hsm(kms, sandbox, hsm_store):
    """CloudHsmClusterInvalidConfigurationException: "For the ConnectCustomKeyStore operation, the
    CloudHSM must contain at least one active HSM" (one is enough)."""
    store_id, cluster_id = hsm_store()
    set_active_hsms(ACCOUNT_ID, REGION, cluster_id, 0)
    with kms_error("CloudHsmClusterInvalidConfigurationException"):
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    set_active_hsms(ACCOUNT_ID, REGION, cluster_id, 1)
    assert connect_and_wait(kms, sandbox, store_id) == "CONNECTED"


# --- quota -----------------------------------------------------------------------------------


@covers((CREATE, "LimitExceededException"))
def test_custom_key_store_quota_is_ten_per_account_and_region(kms, sandbox):
    """LimitExceededException: "a length constraint or quota was exceeded"; KMS Developer Guide,
    Resource quotas: "Custom key store resource quota: 10" (a setting here)."""
    assert sandbox.custom_key_store_quota == 10
    for i in range(10):
        kms.create_custom_key_store(**xks_params(f"s{i}", endpoint=f"https://p{i}.example.com"))
    with kms_error("LimitExceededException"):
        kms.create_custom_key_store(**xks_params("s10", endpoint="https://p10.example.com"))
    sandbox.custom_key_store_quota = 11
    kms.create_custom_key_store(**xks_params("s10", endpoint="https://p10.example.com"))


# --- connection state ------------------------------------------------------------------------


@covers((CONNECT, "CustomKeyStoreInvalidStateException"))
@pytest.mark.parametrize("state", ["DISCONNECTING", "FAILED"])
def test_connect_refused_in_disconnecting_or_failed(kms, sandbox, xks_store, state):
    """CustomKeyStoreInvalidStateException: "You requested the ConnectCustomKeyStore operation on a
    custom key store with a ConnectionState of DISCONNECTING or FAILED"."""
    store_id = xks_store("s")
    if state == "FAILED":
        sandbox.faults.connection_errors["s"] = "NETWORK_ERRORS"
        assert connect_and_wait(kms, sandbox, store_id) == "FAILED"
    else:
        assert connect_and_wait(kms, sandbox, store_id) == "CONNECTED"
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.connect_custom_key_store(CustomKeyStoreId=store_id)


@covers((DISCONNECT, "CustomKeyStoreInvalidStateException"))
@pytest.mark.parametrize("state", ["DISCONNECTED", "DISCONNECTING"])
def test_disconnect_refused_in_disconnected_or_disconnecting(kms, xks_store, state):
    """CustomKeyStoreInvalidStateException: "You requested the DisconnectCustomKeyStore operation on
    a custom key store with a ConnectionState of DISCONNECTING or DISCONNECTED"."""
    store_id = xks_store(connect=state == "DISCONNECTING")
    if state == "DISCONNECTING":
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)


@covers((UPDATE, "CustomKeyStoreInvalidStateException"))
def test_update_password_of_connected_cloudhsm_store_is_refused(kms, hsm_store):
    """CustomKeyStoreInvalidStateException: "UpdateCustomKeyStore can be called on a custom key
    store in the CONNECTED state only to update NewCustomKeyStoreName"."""
    store_id, _ = hsm_store(connect=True)
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, KeyStorePassword="changed-pw")


@covers((DELETE, "CustomKeyStoreInvalidStateException"))
def test_delete_connected_store_is_refused(kms, xks_store):
    """CustomKeyStoreInvalidStateException: "You requested the UpdateCustomKeyStore or
    DeleteCustomKeyStore operation on a custom key store that is not disconnected"."""
    store_id = xks_store(connect=True)
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)


@covers((DELETE, "CustomKeyStoreHasCMKsException"))
def test_delete_store_with_pending_deletion_key_is_refused(kms, sandbox, xks_store):
    """CustomKeyStoreHasCMKsException: "the custom key store contains KMS keys" - a key pending
    deletion still counts until its waiting period ends."""
    store_id = xks_store(connect=True)
    key_id = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="k1")["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    sandbox.clock.advance(sandbox.disconnect_delay_seconds)
    with kms_error("CustomKeyStoreHasCMKsException"):
        kms.delete_custom_key_store(CustomKeyStoreId=store_id)


# --- unknown stores, markers -----------------------------------------------------------------


@covers(*[(op, "CustomKeyStoreNotFoundException") for op in (UPDATE, CONNECT, DISCONNECT, DELETE, DESCRIBE)])
@pytest.mark.parametrize(
    "call",
    [
        lambda kms: kms.update_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0", NewCustomKeyStoreName="x"),
        lambda kms: kms.connect_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
        lambda kms: kms.disconnect_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
        lambda kms: kms.delete_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
        lambda kms: kms.describe_custom_key_stores(CustomKeyStoreId="cks-0123456789abcdef0"),
        lambda kms: kms.describe_custom_key_stores(CustomKeyStoreName="nobody"),
    ],
    ids=["update", "connect", "disconnect", "delete", "describe-id", "describe-name"],
)
def test_unknown_store_is_not_found(kms, call):
    """CustomKeyStoreNotFoundException: "KMS cannot find a custom key store with the specified key
    store name or ID"."""
    with kms_error("CustomKeyStoreNotFoundException"):
        call(kms)


@covers((DESCRIBE, "InvalidMarkerException"))
def test_describe_with_a_bad_marker_is_refused(kms):
    """InvalidMarkerException: "the marker that specifies where pagination should next begin is
    not valid"."""
    with kms_error("InvalidMarkerException"):
        kms.describe_custom_key_stores(Marker="not-a-marker")


# --- KMSInternalException via the error_rate fault ---------------------------------------------


@covers(*[(op, "KMSInternalException") for op in SIX])
@pytest.mark.parametrize(
    "call",
    [
        lambda kms: kms.create_custom_key_store(**xks_params("x")),
        lambda kms: kms.update_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
        lambda kms: kms.connect_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
        lambda kms: kms.disconnect_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
        lambda kms: kms.delete_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0"),
        lambda kms: kms.describe_custom_key_stores(),
    ],
    ids=list(SIX),
)
def test_error_rate_fault_answers_kms_internal_exception(kms, sandbox, call):
    """KMSInternalException: "an internal exception occurred. The request can be retried." Raised
    by faults.error_rate before the request has any effect."""
    sandbox.faults.error_rate = 1.0
    with kms_error("KMSInternalException"):
        call(kms)
    sandbox.faults.error_rate = 0.0
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


# --- CreateKey ---------------------------------------------------------------------------------


@covers((CREATE_KEY, "CustomKeyStoreNotFoundException"))
def test_create_key_in_unknown_store_is_not_found(kms):
    with kms_error("CustomKeyStoreNotFoundException"):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId="cks-0123456789abcdef0")


@covers((CREATE_KEY, "CustomKeyStoreInvalidStateException"))
def test_create_key_in_store_that_is_not_connected_is_refused(kms, xks_store):
    """CustomKeyStoreInvalidStateException: "You requested the CreateKey operation in a custom key
    store that is not connected"."""
    store_id = xks_store()
    with kms_error("CustomKeyStoreInvalidStateException"):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="k1")


@covers((CREATE_KEY, "CloudHsmClusterInvalidConfigurationException"))
def test_create_key_needs_two_active_hsms(kms, hsm_store):
    """CreateKey: "The CloudHSM cluster that is associated with the custom key store must have at
    least two active HSMs in different Availability Zones"."""
    store_id, cluster_id = hsm_store(connect=True)
    set_active_hsms(ACCOUNT_ID, REGION, cluster_id, 1)
    with kms_error("CloudHsmClusterInvalidConfigurationException"):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)


@covers((CREATE_KEY, "XksKeyAlreadyInUseException"))
def test_each_key_in_an_external_key_store_needs_its_own_external_key(kms, xks_store):
    """XksKeyAlreadyInUseException: "Each KMS key in an external key store must be associated with
    a different external key"."""
    store_id = xks_store(connect=True)
    kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="k1")
    with kms_error("XksKeyAlreadyInUseException"):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="k1")


def test_the_same_external_key_may_back_keys_in_different_stores(kms, xks_store):
    first = xks_store(connect=True)
    second = xks_store(connect=True)
    kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=first, XksKeyId="k1")
    kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=second, XksKeyId="k1")


@covers((CREATE_KEY, "XksKeyNotFoundException"))
def test_external_key_missing_from_the_key_manager_is_not_found(kms, sandbox, xks_store):
    """XksKeyNotFoundException: "the XksKeyId parameter doesn't identify a key in the external key
    manager" (faults.xks_missing_keys)."""
    store_id = xks_store("ext", connect=True)
    sandbox.faults.xks_missing_keys["ext"] = ["gone"]
    with kms_error("XksKeyNotFoundException"):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="gone")


@covers((CREATE_KEY, "XksKeyInvalidConfigurationException"))
def test_external_key_that_is_not_aes256_is_invalid(kms, sandbox, xks_store):
    """XksKeyInvalidConfigurationException: "The external key must be an AES-256 symmetric key that
    is enabled and performs encryption and decryption" (faults.xks_invalid_keys)."""
    store_id = xks_store("ext", connect=True)
    sandbox.faults.xks_invalid_keys["ext"] = ["rsa-key"]
    with kms_error("XksKeyInvalidConfigurationException"):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="rsa-key")


@covers((CREATE_KEY, "UnsupportedOperationException"))
@pytest.mark.parametrize(
    "extra",
    [{"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"}, {"KeyUsage": "GENERATE_VERIFY_MAC"}, {"MultiRegion": True}],
    ids=["asymmetric", "hmac-usage", "multi-region"],
)
def test_only_symmetric_single_region_keys_in_a_custom_key_store(kms, hsm_store, extra):
    """CreateKey: "Use the default KeySpec value, SYMMETRIC_DEFAULT, and the default KeyUsage value,
    ENCRYPT_DECRYPT ... No other key type is supported in a custom key store"; "you cannot create
    a multi-Region key in a custom key store"."""
    store_id, _ = hsm_store(connect=True)
    with kms_error("UnsupportedOperationException"):
        kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id, **extra)


def test_origin_must_match_the_store_type(kms, hsm_store):
    store_id, _ = hsm_store(connect=True)
    with kms_error("UnsupportedOperationException"):
        kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="k1")


@pytest.mark.parametrize(
    "params",
    [
        {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": "cks-0123456789abcdef0"},
        {"Origin": "AWS_CLOUDHSM"},
        {"XksKeyId": "k1"},
        {"CustomKeyStoreId": "cks-0123456789abcdef0"},
    ],
    ids=["xks-without-XksKeyId", "cloudhsm-without-store", "XksKeyId-with-AWS_KMS", "store-with-AWS_KMS"],
)
def test_create_key_parameter_combinations_are_validated(kms, params):
    """CreateKey Origin doc: AWS_CLOUDHSM "You must also use the CustomKeyStoreId parameter";
    EXTERNAL_KEY_STORE "You must also use the CustomKeyStoreId parameter ... and the XksKeyId
    parameter"; XksKeyId "is not valid for KMS keys with any other Origin value"."""
    with kms_error("ValidationException"):
        kms.create_key(**params)


# --- the catalogue is complete -------------------------------------------------------------------


def test_every_error_of_the_six_operations_and_createkeys_custom_store_errors_is_covered():
    model = botocore.session.get_session().get_service_model("kms")
    expected = {(op, e.name) for op in SIX for e in model.operation_model(op).error_shapes}
    create_key_errors = {e.name for e in model.operation_model(CREATE_KEY).error_shapes}
    assert CUSTOM_KEY_STORE_ERRORS_OF_CREATE_KEY <= create_key_errors
    expected |= {(CREATE_KEY, name) for name in CUSTOM_KEY_STORE_ERRORS_OF_CREATE_KEY}
    missing = sorted(expected - COVERED)
    assert not missing, f"no test raises: {missing}"
