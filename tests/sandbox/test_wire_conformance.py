"""Every KMS operation of the API model, served over HTTP, through a raw HTTP client and through
boto3: every response body is checked against the operation's output shape, every error against
its error list (tests/sandbox/model_check.py).

One scenario calls each of the model's operations at least once, in an order that makes each call
meaningful (a key to describe, a ciphertext to decrypt, a grant to retire...). The only expected
errors are those of Encapsulate and Decapsulate, which need an ML-KEM key the emulator does not
create (docs/emulator.md).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable

import boto3
from botocore import xform_name
from botocore.config import Config
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from reconciler.sandbox.seed import create_cloudhsm_cluster, trust_anchor
from tests.sandbox.helpers import ACCOUNT_ID, CREDENTIAL, KEY_STORE_PASSWORD, REGION
from tests.sandbox.model_check import model, operations, response_problems
from tests.sandbox.served import RawKms, reset_account

Call = Callable[..., dict[str, Any]]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def scenario(call: Call, settings: Any) -> None:
    """One call (at least) of every operation; ``call(operation, params, expect=None)``."""
    cluster_id = create_cloudhsm_cluster(ACCOUNT_ID, REGION)
    xks = call("CreateCustomKeyStore", {
        "CustomKeyStoreName": "xks", "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyConnectivity": "PUBLIC_ENDPOINT", "XksProxyUriEndpoint": "https://proxy.example.com",
        "XksProxyUriPath": "/kms/xks/v1", "XksProxyAuthenticationCredential": CREDENTIAL,
    })["CustomKeyStoreId"]
    hsm = call("CreateCustomKeyStore", {
        "CustomKeyStoreName": "hsm", "CloudHsmClusterId": cluster_id,
        "TrustAnchorCertificate": trust_anchor(ACCOUNT_ID, REGION, cluster_id), "KeyStorePassword": KEY_STORE_PASSWORD,
    })["CustomKeyStoreId"]
    spare = call("CreateCustomKeyStore", {
        "CustomKeyStoreName": "spare", "CustomKeyStoreType": "EXTERNAL_KEY_STORE",
        "XksProxyConnectivity": "PUBLIC_ENDPOINT", "XksProxyUriEndpoint": "https://spare.example.com",
        "XksProxyUriPath": "/kms/xks/v1", "XksProxyAuthenticationCredential": CREDENTIAL,
    })["CustomKeyStoreId"]
    call("ConnectCustomKeyStore", {"CustomKeyStoreId": xks})
    call("ConnectCustomKeyStore", {"CustomKeyStoreId": hsm})
    settings.clock.advance(settings.connect_delay_seconds)
    stores = call("DescribeCustomKeyStores", {"Limit": 2})
    assert stores["Truncated"] is True
    call("DescribeCustomKeyStores", {"Marker": stores["NextMarker"]})
    call("UpdateCustomKeyStore", {"CustomKeyStoreId": xks, "NewCustomKeyStoreName": "xks-renamed"})
    call("DeleteCustomKeyStore", {"CustomKeyStoreId": spare})

    symmetric = call("CreateKey", {"Description": "plain", "Tags": [{"TagKey": "team", "TagValue": "a"}]})["KeyMetadata"]
    in_xks = call("CreateKey", {"Origin": "EXTERNAL_KEY_STORE", "CustomKeyStoreId": xks, "XksKeyId": "ext-1"})["KeyMetadata"]
    in_hsm = call("CreateKey", {"Origin": "AWS_CLOUDHSM", "CustomKeyStoreId": hsm})["KeyMetadata"]
    signing = call("CreateKey", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})["KeyMetadata"]
    agreement = call("CreateKey", {"KeySpec": "ECC_NIST_P256", "KeyUsage": "KEY_AGREEMENT"})["KeyMetadata"]
    hmac_key = call("CreateKey", {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"})["KeyMetadata"]
    external = call("CreateKey", {"Origin": "EXTERNAL"})["KeyMetadata"]
    multi = call("CreateKey", {"MultiRegion": True})["KeyMetadata"]
    assert external["KeyState"] == "PendingImport"
    for metadata in (symmetric, in_xks, in_hsm):
        assert "SigningAlgorithms" not in metadata and metadata["KeyUsage"] == "ENCRYPT_DECRYPT"
    key = symmetric["KeyId"]

    call("DescribeKey", {"KeyId": in_xks["Arn"]})
    call("ListKeys", {"Limit": 3})
    call("UpdateKeyDescription", {"KeyId": key, "Description": "renamed"})
    call("CreateAlias", {"AliasName": "alias/app", "TargetKeyId": key})
    call("UpdateAlias", {"AliasName": "alias/app", "TargetKeyId": in_xks["KeyId"]})
    call("ListAliases", {"Limit": 5})
    call("DeleteAlias", {"AliasName": "alias/app"})
    call("TagResource", {"KeyId": key, "Tags": [{"TagKey": "env", "TagValue": "test"}, {"TagKey": "cost", "TagValue": "1"}]})
    tags = call("ListResourceTags", {"KeyId": key, "Limit": 2})
    assert tags["Truncated"] is True
    assert "NextMarker" not in call("ListResourceTags", {"KeyId": key, "Marker": tags["NextMarker"]})
    call("UntagResource", {"KeyId": key, "TagKeys": ["cost"]})

    encrypted = call("Encrypt", {"KeyId": key, "Plaintext": b64(b"attack at dawn"), "EncryptionContext": {"a": "b"}})
    call("Decrypt", {"CiphertextBlob": encrypted["CiphertextBlob"], "EncryptionContext": {"a": "b"}})
    call("ReEncrypt", {"CiphertextBlob": encrypted["CiphertextBlob"], "SourceEncryptionContext": {"a": "b"},
                       "DestinationKeyId": in_xks["KeyId"]})
    call("GenerateDataKey", {"KeyId": key, "KeySpec": "AES_256"})
    call("GenerateDataKeyWithoutPlaintext", {"KeyId": in_hsm["KeyId"], "NumberOfBytes": 32})
    call("GenerateDataKeyPair", {"KeyId": key, "KeyPairSpec": "ECC_NIST_P256"})
    call("GenerateDataKeyPairWithoutPlaintext", {"KeyId": key, "KeyPairSpec": "ECC_NIST_P384"})
    call("GenerateRandom", {"NumberOfBytes": 16, "CustomKeyStoreId": hsm})
    mac = call("GenerateMac", {"KeyId": hmac_key["KeyId"], "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256"})
    call("VerifyMac", {"KeyId": hmac_key["KeyId"], "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256", "Mac": mac["Mac"]})
    signature = call("Sign", {"KeyId": signing["KeyId"], "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_256"})
    call("Verify", {"KeyId": signing["KeyId"], "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_256",
                    "Signature": signature["Signature"]})
    call("GetPublicKey", {"KeyId": agreement["KeyId"]})
    peer = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    call("DeriveSharedSecret", {"KeyId": agreement["KeyId"], "KeyAgreementAlgorithm": "ECDH", "PublicKey": b64(peer)})
    if "Encapsulate" in model().operation_names:  # botocore has them since the ML-KEM key specs
        call("Encapsulate", {"KeyId": key, "EncapsulationAlgorithm": "ML_KEM"}, expect="InvalidKeyUsageException")
        call("Decapsulate", {"KeyId": key, "SharedSecretCiphertextBlob": b64(b"x" * 32),
                             "EncapsulationAlgorithm": "ML_KEM"}, expect="InvalidKeyUsageException")

    call("GetKeyPolicy", {"KeyId": key})
    call("PutKeyPolicy", {"KeyId": key, "Policy": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]})})
    call("ListKeyPolicies", {"KeyId": key})
    call("EnableKeyRotation", {"KeyId": key, "RotationPeriodInDays": 180})
    assert call("GetKeyRotationStatus", {"KeyId": key})["KeyRotationEnabled"] is True
    call("RotateKeyOnDemand", {"KeyId": key})
    call("ListKeyRotations", {"KeyId": key})
    call("DisableKeyRotation", {"KeyId": key})

    grant = call("CreateGrant", {"KeyId": key, "GranteePrincipal": "arn:aws:iam::123456789012:role/app",
                                 "RetiringPrincipal": "arn:aws:iam::123456789012:role/ops", "Operations": ["Decrypt"]})
    call("ListGrants", {"KeyId": key})
    call("ListRetirableGrants", {"RetiringPrincipal": "arn:aws:iam::123456789012:role/ops"})
    call("RetireGrant", {"GrantToken": grant["GrantToken"]})
    second = call("CreateGrant", {"KeyId": key, "GranteePrincipal": "arn:aws:iam::123456789012:role/app", "Operations": ["Encrypt"]})
    call("RevokeGrant", {"KeyId": key, "GrantId": second["GrantId"]})

    call("ReplicateKey", {"KeyId": multi["KeyId"], "ReplicaRegion": "us-west-2"})
    call("UpdatePrimaryRegion", {"KeyId": multi["KeyId"], "PrimaryRegion": "us-west-2"})
    described = call("DescribeKey", {"KeyId": multi["KeyId"]})["KeyMetadata"]["MultiRegionConfiguration"]
    assert described["MultiRegionKeyType"] == "REPLICA" and described["PrimaryKey"]["Region"] == "us-west-2"

    parameters = call("GetParametersForImport", {"KeyId": external["KeyId"], "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
                                                 "WrappingKeySpec": "RSA_2048"})
    wrapping_key = serialization.load_der_public_key(base64.b64decode(parameters["PublicKey"]))
    wrapped = wrapping_key.encrypt(b"k" * 32, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    call("ImportKeyMaterial", {"KeyId": external["KeyId"], "ImportToken": parameters["ImportToken"],
                               "EncryptedKeyMaterial": b64(wrapped), "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
    assert call("DescribeKey", {"KeyId": external["KeyId"]})["KeyMetadata"]["KeyState"] == "Enabled"
    call("DeleteImportedKeyMaterial", {"KeyId": external["KeyId"]})
    call("GetKeyLastUsage", {"KeyId": key})

    call("DisableKey", {"KeyId": key})
    call("EnableKey", {"KeyId": key})
    call("ScheduleKeyDeletion", {"KeyId": key, "PendingWindowInDays": 7})
    call("CancelKeyDeletion", {"KeyId": key})
    call("DisconnectCustomKeyStore", {"CustomKeyStoreId": xks})


def _raw_call(client: RawKms, seen: set[str]) -> Call:
    def call(operation: str, params: dict[str, Any], expect: str | None = None) -> dict[str, Any]:
        status, headers, body = client.call(operation, params)
        seen.add(operation)
        problems = response_problems(operation, status, headers, body)
        assert not problems, f"{operation}: {problems}"
        document = json.loads(body or b"{}")
        if expect is None:
            assert 200 <= status < 300, f"{operation}: HTTP {status} {document}"
        else:
            assert document.get("__type") == expect, f"{operation}: {status} {document}"
        return document

    return call


def _to_boto3(shape: Any, value: Any) -> Any:
    """Wire-form params (blobs in base64) to what boto3 takes (blobs as bytes)."""
    if shape.type_name == "structure":
        return {name: _to_boto3(shape.members[name], item) for name, item in value.items()}
    if shape.type_name == "list":
        return [_to_boto3(shape.member, item) for item in value]
    if shape.type_name == "blob":
        return base64.b64decode(value)
    return value


def _boto3_call(client: Any, seen: set[str]) -> Call:
    last: dict[str, Any] = {}

    def remember(http_response: Any, **_: Any) -> None:
        last["response"] = http_response

    client.meta.events.register("after-call.kms", remember)

    def call(operation: str, params: dict[str, Any], expect: str | None = None) -> dict[str, Any]:
        shape = model().operation_model(operation).input_shape
        method = getattr(client, xform_name(operation))
        last.clear()
        try:
            method(**_to_boto3(shape, params))
        except client.exceptions.ClientError as error:
            assert expect is not None and error.response["Error"]["Code"] == expect, f"{operation}: {error}"
        else:
            assert expect is None, f"{operation}: expected {expect}"
        seen.add(operation)
        http_response = last["response"]
        problems = response_problems(operation, http_response.status_code, http_response.headers, http_response.content)
        assert not problems, f"{operation}: {problems}"
        return json.loads(http_response.content or b"{}")

    return call


def test_every_operation_through_a_raw_http_client(served):
    url, settings = served
    reset_account()
    client, seen = RawKms(url), set()
    try:
        scenario(_raw_call(client, seen), settings)
    finally:
        client.close()
    assert seen == set(operations())


def test_every_operation_through_boto3(served):
    url, settings = served
    reset_account()
    client = boto3.client(
        "kms", region_name=REGION, endpoint_url=url, aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    seen: set[str] = set()
    scenario(_boto3_call(client, seen), settings)
    assert seen == set(operations())
