"""The emulator calls a registered XKS proxy, as KMS does: every ConnectionErrorCode of a proxy
and every CreateKey exception reached through a real proxy on a local port, with no fault switch.

Rules (KMS API Reference, botocore's model): CreateCustomKeyStore / UpdateCustomKeyStore of a
PUBLIC_ENDPOINT store contact the proxy (XksProxyUriEndpoint: "KMS connects to the external key
store proxy while creating the custom key store") and raise XksProxyIncorrectAuthentication-
CredentialException, XksProxyInvalidConfigurationException, XksProxyInvalidResponseException,
XksProxyUriUnreachableException; a connection ends FAILED with a ConnectionErrorCode; CreateKey
raises XksKeyNotFoundException / XksKeyInvalidConfigurationException; a cryptographic operation
whose proxy fails is KMSInvalidStateException.
"""

from __future__ import annotations

import base64
from typing import Any, Iterator

import pytest

from reconciler.sandbox.control import XksProxyRegistration, register_xks_proxy
from reconciler.sandbox.xks_proxy import CertificateAuthority, ProxyConfig, ProxyServer, XksProxy
from tests.conftest import XKS_ACCESS_KEY_ID, XKS_SECRET, connect_and_wait, store_state
from tests.sandbox.helpers import kms_error

HOST = "xks.proxy-test.example.com"
ENDPOINT = f"https://{HOST}"
PATH = "/test/kms/xks/v1"
OTHER_AKID = "ZYXWVUTSRQPONMLKJIHG7654"
OTHER_SECRET = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC1vdGhlci1zZWNyZXQ="


def proxy_config(uri_path: str = PATH) -> ProxyConfig:
    return ProxyConfig.model_validate({
        "uriPath": uri_path,
        "credentials": [{"accessKeyId": XKS_ACCESS_KEY_ID, "secretAccessKey": XKS_SECRET}],
        "keys": [{"id": "good"}, {"id": "switched-off", "status": "DISABLED"}, {"id": "not-aes", "spec": "RSA_2048"},
                 {"id": "encrypt-only", "usage": ["ENCRYPT"]}],
    })


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


def start(ca: CertificateAuthority, uri_path: str = PATH) -> ProxyServer:
    certificate = ca.issue([HOST, "127.0.0.1"])
    return ProxyServer(XksProxy(proxy_config(uri_path)), certificate=certificate, ca_pem=ca.cert_pem).start()


def register(sandbox: Any, server: ProxyServer, *, ca_pem: str | None = None) -> None:
    info = server.info()
    register_xks_proxy(sandbox, XksProxyRegistration(HOST, info.host, info.port, info.scheme,
                                                     ca_pem if ca_pem is not None else info.ca_pem))


@pytest.fixture
def proxy(sandbox: Any, ca: CertificateAuthority) -> Iterator[ProxyServer]:
    server = start(ca)
    register(sandbox, server)
    try:
        yield server
    finally:
        server.stop()


def create(kms: Any, name: str = "real-proxy", *, path: str = PATH, akid: str = XKS_ACCESS_KEY_ID,
           secret: str = XKS_SECRET) -> str:
    return kms.create_custom_key_store(
        CustomKeyStoreName=name, CustomKeyStoreType="EXTERNAL_KEY_STORE", XksProxyConnectivity="PUBLIC_ENDPOINT",
        XksProxyUriEndpoint=ENDPOINT, XksProxyUriPath=path,
        XksProxyAuthenticationCredential={"AccessKeyId": akid, "RawSecretAccessKey": secret})["CustomKeyStoreId"]


def connection_error(kms: Any, sandbox: Any, store_id: str) -> str | None:
    assert connect_and_wait(kms, sandbox, store_id) in ("CONNECTED", "FAILED")
    return kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0].get("ConnectionErrorCode")


# --- CreateCustomKeyStore / UpdateCustomKeyStore call health --------------------------------------


def test_create_calls_health_with_the_stores_credential(kms, proxy) -> None:
    create(kms)
    calls = [c for c in proxy.proxy.calls if c.kind == "health"]
    assert calls and calls[-1].access_key_id == XKS_ACCESS_KEY_ID and calls[-1].status == 200
    assert calls[-1].kms_operation == "CreateCustomKeyStore"


def test_create_with_a_wrong_secret_is_XksProxyIncorrectAuthenticationCredentialException(kms, proxy) -> None:
    with kms_error("XksProxyIncorrectAuthenticationCredentialException"):
        create(kms, secret=OTHER_SECRET)
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_create_with_a_wrong_uri_path_is_XksProxyInvalidConfigurationException(kms, proxy) -> None:
    with kms_error("XksProxyInvalidConfigurationException"):
        create(kms, path="/wrong/kms/xks/v1")


def test_create_when_the_proxy_answers_an_internal_error_is_XksProxyInvalidResponseException(kms, proxy) -> None:
    proxy.proxy.controls.inject_error("InternalException", kind="health")
    with kms_error("XksProxyInvalidResponseException"):
        create(kms)


def test_create_when_nothing_listens_is_XksProxyUriUnreachableException(kms, proxy) -> None:
    proxy.stop()
    with kms_error("XksProxyUriUnreachableException"):
        create(kms)


def test_update_of_the_credential_calls_health_with_the_new_one(kms, proxy) -> None:
    store_id = create(kms)
    with kms_error("XksProxyIncorrectAuthenticationCredentialException"):
        kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyAuthenticationCredential={
            "AccessKeyId": OTHER_AKID, "RawSecretAccessKey": OTHER_SECRET})
    proxy.proxy.set_credentials([(XKS_ACCESS_KEY_ID, XKS_SECRET), (OTHER_AKID, OTHER_SECRET)])  # a rotation
    kms.update_custom_key_store(CustomKeyStoreId=store_id, XksProxyAuthenticationCredential={
        "AccessKeyId": OTHER_AKID, "RawSecretAccessKey": OTHER_SECRET})
    assert proxy.proxy.calls[-1].access_key_id == OTHER_AKID


# --- ConnectCustomKeyStore: every ConnectionErrorCode of a proxy -----------------------------------


def test_connect_ends_CONNECTED_when_the_proxy_is_healthy(kms, sandbox, proxy) -> None:
    assert connection_error(kms, sandbox, create(kms)) is None
    assert proxy.proxy.calls[-1].kms_operation == "ConnectCustomKeyStore"


def test_connect_is_decided_when_due_on_the_emulator_clock(kms, sandbox, proxy) -> None:
    store_id = create(kms)
    kms.connect_custom_key_store(CustomKeyStoreId=store_id)
    proxy.proxy.set_credentials([(OTHER_AKID, OTHER_SECRET)])  # changed while KMS is connecting
    assert store_state(kms, store_id) == "CONNECTING"
    sandbox.clock.advance(sandbox.connect_delay_seconds)
    assert kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0][
        "ConnectionErrorCode"] == "INVALID_CREDENTIALS"


def test_connect_INVALID_CREDENTIALS(kms, sandbox, proxy) -> None:
    store_id = create(kms)
    proxy.proxy.set_credentials([(OTHER_AKID, OTHER_SECRET)])
    assert connection_error(kms, sandbox, store_id) == "INVALID_CREDENTIALS"


def test_connect_XKS_PROXY_INVALID_CONFIGURATION_for_a_path_the_proxy_does_not_serve(kms, sandbox, proxy, ca) -> None:
    store_id = create(kms)
    moved = start(ca, "/moved/kms/xks/v1")
    try:
        register(sandbox, moved)
        assert connection_error(kms, sandbox, store_id) == "XKS_PROXY_INVALID_CONFIGURATION"
    finally:
        moved.stop()


def test_connect_XKS_PROXY_NOT_REACHABLE_when_nothing_listens(kms, sandbox, proxy) -> None:
    store_id = create(kms)
    proxy.stop()
    assert connection_error(kms, sandbox, store_id) == "XKS_PROXY_NOT_REACHABLE"


def test_connect_XKS_PROXY_NOT_REACHABLE_when_every_ekm_is_unavailable(kms, sandbox, proxy) -> None:
    store_id = create(kms)
    proxy.proxy.controls.set_health("UNAVAILABLE")
    assert connection_error(kms, sandbox, store_id) == "XKS_PROXY_NOT_REACHABLE"


def test_connect_XKS_PROXY_TIMED_OUT_beyond_250_ms(kms, sandbox, proxy, monkeypatch) -> None:
    monkeypatch.delenv("RECONCILER_SANDBOX_XKS_TIMEOUT_MS")  # KMS's limit, not the suite's margin
    store_id = create(kms)
    proxy.proxy.controls.set_latency(400, "health")
    assert connection_error(kms, sandbox, store_id) == "XKS_PROXY_TIMED_OUT"


def test_connect_XKS_PROXY_INVALID_RESPONSE(kms, sandbox, proxy) -> None:
    store_id = create(kms)
    proxy.proxy.controls.inject_error("ValidationException", kind="health")
    assert connection_error(kms, sandbox, store_id) == "XKS_PROXY_INVALID_RESPONSE"


def test_connect_XKS_PROXY_INVALID_TLS_CONFIGURATION_for_a_certificate_kms_does_not_trust(kms, sandbox, proxy) -> None:
    store_id = create(kms)
    register(sandbox, proxy, ca_pem=CertificateAuthority.create().cert_pem.decode())
    assert connection_error(kms, sandbox, store_id) == "XKS_PROXY_INVALID_TLS_CONFIGURATION"


def test_a_fault_switch_still_wins_over_the_proxy(kms, sandbox, proxy) -> None:
    store_id = create(kms, "switched")
    sandbox.faults.connection_errors["switched"] = "NETWORK_ERRORS"
    assert connection_error(kms, sandbox, store_id) == "NETWORK_ERRORS"


def test_an_unregistered_endpoint_behaves_as_before(kms, sandbox, xks_store) -> None:
    store_id = xks_store()  # https://xks-proxy-1.example.com: nobody registered it
    assert connection_error(kms, sandbox, store_id) is None


# --- CreateKey calls GetKeyMetadata ----------------------------------------------------------------


@pytest.fixture
def connected(kms, sandbox, proxy) -> str:
    store_id = create(kms)
    assert connect_and_wait(kms, sandbox, store_id) == "CONNECTED"
    return store_id


def create_key(kms: Any, store_id: str, xks_key_id: str) -> dict:
    return kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId=xks_key_id)["KeyMetadata"]


def test_create_key_XksKeyNotFoundException(kms, connected, proxy) -> None:
    with kms_error("XksKeyNotFoundException"):
        create_key(kms, connected, "no-such-key")
    assert proxy.proxy.calls[-1].kind == "metadata" and proxy.proxy.calls[-1].kms_operation == "CreateKey"


@pytest.mark.parametrize("xks_key_id", ["switched-off", "not-aes", "encrypt-only"])
def test_create_key_XksKeyInvalidConfigurationException(kms, connected, xks_key_id) -> None:
    with kms_error("XksKeyInvalidConfigurationException"):
        create_key(kms, connected, xks_key_id)


# --- cryptography goes through the proxy -------------------------------------------------------


def test_encrypt_decrypt_round_trip_is_double_encrypted_through_the_proxy(kms, connected, proxy) -> None:
    key = create_key(kms, connected, "good")
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"attack at dawn", EncryptionContext={"a": "b"})["CiphertextBlob"]
    assert [c.kind for c in proxy.proxy.calls][-1] == "encrypt"
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"attack at dawn"
    assert [c.kind for c in proxy.proxy.calls][-1] == "decrypt"
    data_key = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    moved = kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "b"}, DestinationKeyId=other)
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"attack at dawn"
    assert base64.b64encode(blob)  # bytes


def test_a_failing_proxy_makes_encrypt_and_decrypt_KMSInvalidStateException(kms, connected, proxy) -> None:
    key = create_key(kms, connected, "good")
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    proxy.proxy.controls.inject_error("InternalException", kind="decrypt")
    with kms_error("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=blob)
    proxy.proxy.update_key("good", status="DISABLED")
    with kms_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    with kms_error("KMSInvalidStateException"):
        kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=32)
