"""Small helpers for the emulator tests."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT_ID, KEY_STORE_PASSWORD, REGION, XKS_ACCESS_KEY_ID, XKS_SECRET

__all__ = [
    "ACCOUNT_ID",
    "KEY_STORE_PASSWORD",
    "REGION",
    "XKS_ACCESS_KEY_ID",
    "XKS_SECRET",
    "CREDENTIAL",
    "kms_error",
    "xks_params",
    "hsm_params",
]

CREDENTIAL = {"AccessKeyId": XKS_ACCESS_KEY_ID, "RawSecretAccessKey": XKS_SECRET}


@contextmanager
def kms_error(code: str, *, message_contains: str | None = None) -> Iterator[pytest.ExceptionInfo[ClientError]]:
    """Expect a KMS error with ``__type`` == ``code`` (botocore's Error.Code)."""
    with pytest.raises(ClientError) as info:
        yield info
    error = info.value.response["Error"]
    assert error["Code"] == code, f"expected {code}, got {error['Code']}: {error.get('Message')}"
    if message_contains is not None:
        assert message_contains in error.get("Message", ""), error.get("Message")


def xks_params(name: str, endpoint: str = "https://proxy.example.com", path: str = "/kms/xks/v1", **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "CustomKeyStoreName": name,
        "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyConnectivity": "PUBLIC_ENDPOINT",
        "XksProxyUriEndpoint": endpoint,
        "XksProxyUriPath": path,
        "XksProxyAuthenticationCredential": dict(CREDENTIAL),
    }
    params.update(extra)
    return params


def vpc_params(name: str, service: Any, **extra: Any) -> dict[str, Any]:
    params = xks_params(
        name,
        endpoint=service.uri_endpoint,
        XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
        XksProxyVpcEndpointServiceName=service.service_name,
    )
    params.update(extra)
    return params


def hsm_params(name: str, cluster_id: str, **extra: Any) -> dict[str, Any]:
    from reconciler.sandbox.seed import trust_anchor

    params: dict[str, Any] = {
        "CustomKeyStoreName": name,
        "CloudHsmClusterId": cluster_id,
        "TrustAnchorCertificate": trust_anchor(ACCOUNT_ID, REGION, cluster_id),
        "KeyStorePassword": KEY_STORE_PASSWORD,
    }
    params.update(extra)
    return params


def describe_store(kms: Any, store_id: str) -> dict[str, Any]:
    return kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]
