"""moto's own KMS behaviour is unchanged with the extension loaded."""

from __future__ import annotations

import json

from tests.conftest import FROZEN_AT
from tests.sandbox.helpers import kms_error


def test_create_describe_and_list_ordinary_keys(kms):
    created = kms.create_key(Description="plain key", Tags=[{"TagKey": "env", "TagValue": "test"}])["KeyMetadata"]
    assert created["Origin"] == "AWS_KMS" and created["KeyState"] == "Enabled"
    assert created["CreationDate"] == FROZEN_AT  # from the emulator clock
    assert "CustomKeyStoreId" not in created
    described = kms.describe_key(KeyId=created["Arn"])["KeyMetadata"]
    assert described["KeyId"] == created["KeyId"] and described["Description"] == "plain key"
    assert kms.list_keys()["Keys"] == [{"KeyId": created["KeyId"], "KeyArn": created["Arn"]}]
    assert kms.list_resource_tags(KeyId=created["KeyId"])["Tags"] == [{"TagKey": "env", "TagValue": "test"}]


def test_aliases_create_update_delete_and_describe_by_alias(kms):
    first = kms.create_key()["KeyMetadata"]["KeyId"]
    second = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/app", TargetKeyId=first)
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == first
    kms.update_alias(AliasName="alias/app", TargetKeyId=second)
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == second
    with kms_error("AlreadyExistsException"):
        kms.create_alias(AliasName="alias/app", TargetKeyId=first)
    kms.delete_alias(AliasName="alias/app")
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId="alias/app")


def test_encrypt_decrypt_round_trip(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    ciphertext = kms.encrypt(KeyId=key_id, Plaintext=b"attack at dawn", EncryptionContext={"a": "b"})["CiphertextBlob"]
    decrypted = kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext={"a": "b"})
    assert decrypted["Plaintext"] == b"attack at dawn"
    assert decrypted["KeyId"].endswith(key_id)
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]


def test_encrypt_decrypt_with_a_connected_xks_key(kms, xks_store):
    store_id = xks_store(connect=True)
    key_id = kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId="ext-1")["KeyMetadata"]["KeyId"]
    ciphertext = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=ciphertext)["Plaintext"] == b"x"


def test_enable_disable_and_tags(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=key_id)
    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "k", "TagValue": "v"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["k"])
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == []


def test_schedule_deletion_of_an_ordinary_key_reports_date_and_state(kms, sandbox):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    response = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=10)
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"
    assert metadata["DeletionDate"] == response["DeletionDate"]


def test_asymmetric_keys_sign_verify_and_public_key(kms):
    key_id = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signature = kms.sign(KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert kms.verify(KeyId=key_id, Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
    assert kms.get_public_key(KeyId=key_id)["PublicKey"]


def test_key_policy_and_rotation(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert policy["Statement"]
    kms.enable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


def test_unknown_key_is_not_found(kms):
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId="11111111-2222-3333-4444-555555555555")
