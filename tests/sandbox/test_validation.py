"""Input validation: the API model's lengths, patterns, enums and required members (checked by
the emulator itself; these tests use a client without botocore's own parameter validation), and
the cross-field rules of CreateCustomKeyStore."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.apimodel import validate_input
from reconciler.sandbox.seed import create_cloudhsm_cluster, create_vpc_endpoint_service
from tests.sandbox.helpers import ACCOUNT_ID, CREDENTIAL, REGION, XKS_SECRET, hsm_params, kms_error, xks_params


@pytest.mark.parametrize(
    "endpoint",
    ["http://proxy.example.com", "https://proxy.example.com:8443", "https://proxy.example.com/kms", "https://"],
    ids=["http", "port", "path", "empty-host"],
)
def test_uri_endpoint_is_https_without_port_or_path(raw_kms, endpoint):
    """XksProxyUriEndpoint: "The value of this parameter must begin with https://. ... Additional
    slashes (/ and \\) are not permitted"; "Do not specify the port"."""
    with kms_error("ValidationException", message_contains="xksProxyUriEndpoint"):
        raw_kms.create_custom_key_store(**xks_params("x", endpoint=endpoint))


@pytest.mark.parametrize("path", ["/kms/xks/v1", "/kms/xks/v12", "/prefix/kms/xks/v1", "/a/b_c-d/kms/xks/v2"])
def test_uri_path_accepts_kms_xks_version_with_optional_prefix(raw_kms, path):
    """XksProxyUriPath: "must start with / and must end with /kms/xks/v1 ... can include an
    optional prefix between the required elements such as /prefix/kms/xks/v1"."""
    raw_kms.create_custom_key_store(**xks_params("x", path=path))


@pytest.mark.parametrize("path", ["/kms/xks/v123", "/kms/xks/", "kms/xks/v1", "/kms/xks/v1/", "/kms/xks/vX"])
def test_uri_path_rejects_other_forms(raw_kms, path):
    with kms_error("ValidationException", message_contains="xksProxyUriPath"):
        raw_kms.create_custom_key_store(**xks_params("x", path=path))


@pytest.mark.parametrize(
    "access_key_id",
    ["ABCDEFGHIJKLMNOPQRS", "A" * 31, "abcdefghijklmnopqrst", "ABCDEFGHIJKLMNOPQRS8"],
    ids=["19-chars", "31-chars", "lowercase", "digit-8"],
)
def test_access_key_id_is_20_to_30_of_a_to_z_and_2_to_7(raw_kms, access_key_id):
    """XksProxyAuthenticationAccessKeyIdType: min 20, max 30, pattern ^[A-Z2-7]+$."""
    params = xks_params("x", XksProxyAuthenticationCredential={"AccessKeyId": access_key_id, "RawSecretAccessKey": XKS_SECRET})
    with kms_error("ValidationException", message_contains="accessKeyId"):
        raw_kms.create_custom_key_store(**params)


@pytest.mark.parametrize("secret", ["a" * 42, "a" * 65, "a" * 42 + "!"], ids=["42-chars", "65-chars", "bad-char"])
def test_raw_secret_access_key_is_43_to_64_base64_characters_and_never_echoed(raw_kms, secret):
    """RawSecretAccessKey: "A secret string of 43-64 characters. Valid characters are a-z, A-Z,
    0-9, /, +, and ="; a sensitive value is never repeated in the error message."""
    params = xks_params("x", XksProxyAuthenticationCredential={"AccessKeyId": CREDENTIAL["AccessKeyId"], "RawSecretAccessKey": secret})
    with kms_error("ValidationException", message_contains="rawSecretAccessKey") as info:
        raw_kms.create_custom_key_store(**params)
    assert secret not in info.value.response["Error"]["Message"]


@pytest.mark.parametrize("password", ["123456", "x" * 33])
def test_key_store_password_is_7_to_32_characters(raw_kms, password):
    """KeyStorePassword: "The password must be a string of 7 to 32 characters"."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    with kms_error("ValidationException", message_contains="keyStorePassword") as info:
        raw_kms.create_custom_key_store(**hsm_params("hsm", cluster_id, KeyStorePassword=password))
    assert password not in info.value.response["Error"]["Message"]


@given(st.text(min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_property_password_length_rule_and_no_echo(password):
    """For any KeyStorePassword: rejected exactly when its length is outside 7-32, and the error
    message never contains it."""
    params = {"CustomKeyStoreName": "n", "KeyStorePassword": password}
    try:
        validate_input("CreateCustomKeyStore", params)
    except exc.ValidationException as error:
        assert not 7 <= len(password) <= 32
        assert f"'{password}'" not in error.message
        assert "Value at 'keyStorePassword'" in error.message
    else:
        assert 7 <= len(password) <= 32


@pytest.mark.parametrize("cluster_id", ["cluster-short", "cluster-0123456789a", "hsm-abcdefghijk"])
def test_cloudhsm_cluster_id_pattern(raw_kms, cluster_id):
    """CloudHsmClusterIdType: min 19, max 24, pattern cluster-[2-7a-zA-Z]{11,16}."""
    real = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    with kms_error("ValidationException", message_contains="cloudHsmClusterId"):
        raw_kms.create_custom_key_store(**hsm_params("hsm", real, CloudHsmClusterId=cluster_id))


def test_vpc_endpoint_service_name_pattern(raw_kms):
    """XksProxyVpcEndpointServiceNameType pattern ^(com|eu)\\.amazonaws\\.vpce\\.([a-z]+-){2,3}\\d+\\.vpce-svc-[0-9a-z]+$."""
    params = xks_params(
        "x", XksProxyConnectivity="VPC_ENDPOINT_SERVICE", XksProxyVpcEndpointServiceName="my-endpoint-service-name"
    )
    with kms_error("ValidationException", message_contains="xksProxyVpcEndpointServiceName"):
        raw_kms.create_custom_key_store(**params)


@pytest.mark.parametrize("name", ["", "n" * 257])
def test_custom_key_store_name_is_1_to_256_characters(raw_kms, name):
    with kms_error("ValidationException", message_contains="customKeyStoreName"):
        raw_kms.create_custom_key_store(**xks_params(name))


def test_enum_values_are_checked(raw_kms):
    with kms_error("ValidationException", message_contains="enum value set"):
        raw_kms.create_custom_key_store(**xks_params("x", CustomKeyStoreType="EXTERNAL"))


def test_required_members_are_checked(raw_kms):
    with kms_error("ValidationException", message_contains="Member must not be null"):
        raw_kms.create_custom_key_store(CustomKeyStoreType="EXTERNAL_KEY_STORE")


def test_several_violations_are_counted(raw_kms):
    with kms_error("ValidationException", message_contains="3 validation errors detected"):
        raw_kms.create_custom_key_store(**xks_params("", path="/nope"))


# --- cross-field rules (CreateCustomKeyStore doc) ------------------------------------------------


@pytest.mark.parametrize("missing", ["XksProxyConnectivity", "XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyAuthenticationCredential"])
def test_external_key_store_needs_connectivity_endpoint_path_and_credential(kms, missing):
    """CreateCustomKeyStore: "To create an external key store, specify the CustomKeyStoreName and
    a CustomKeyStoreType of EXTERNAL_KEY_STORE. Also, specify values for XksProxyConnectivity,
    XksProxyAuthenticationCredential, XksProxyUriEndpoint, and XksProxyUriPath." """
    params = xks_params("x")
    del params[missing]
    with kms_error("ValidationException", message_contains=missing):
        kms.create_custom_key_store(**params)


def test_vpc_connectivity_needs_a_vpc_endpoint_service_name(kms):
    """"If your XksProxyConnectivity value is VPC_ENDPOINT_SERVICE, specify the
    XksProxyVpcEndpointServiceName parameter." """
    with kms_error("ValidationException", message_contains="XksProxyVpcEndpointServiceName"):
        kms.create_custom_key_store(**xks_params("x", XksProxyConnectivity="VPC_ENDPOINT_SERVICE"))


def test_public_connectivity_must_not_name_a_vpc_endpoint_service(kms):
    service = create_vpc_endpoint_service(ACCOUNT_ID, REGION)
    with kms_error("ValidationException", message_contains="XksProxyVpcEndpointServiceName"):
        kms.create_custom_key_store(**xks_params("x", XksProxyVpcEndpointServiceName=service.service_name))


@pytest.mark.parametrize("missing", ["CloudHsmClusterId", "TrustAnchorCertificate", "KeyStorePassword"])
def test_cloudhsm_key_store_needs_cluster_trust_anchor_and_password(kms, missing):
    """"To create an CloudHSM key store, specify the CustomKeyStoreName, CloudHsmClusterId,
    KeyStorePassword, and TrustAnchorCertificate." """
    params = hsm_params("hsm", create_cloudhsm_cluster(ACCOUNT_ID, REGION))
    del params[missing]
    with kms_error("ValidationException", message_contains=missing):
        kms.create_custom_key_store(**params)


def test_fields_of_the_other_store_type_are_rejected(kms):
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    with kms_error("ValidationException", message_contains="XksProxyUriPath"):
        kms.create_custom_key_store(**hsm_params("hsm", cluster_id, XksProxyUriPath="/kms/xks/v1"))
    with kms_error("ValidationException", message_contains="KeyStorePassword"):
        kms.create_custom_key_store(**xks_params("x", KeyStorePassword="password1"))


def test_moto_operations_are_validated_against_the_model_too(raw_kms):
    """Every KMS request is checked against its input shape, e.g. DescribeKey KeyId min 1."""
    with kms_error("ValidationException", message_contains="keyId"):
        raw_kms.describe_key(KeyId="")
