"""KMS keys in custom key stores, key states, deletion and its purge."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reconciler.sandbox.seed import set_active_hsms
from tests.conftest import FROZEN_AT, connect_and_wait
from tests.sandbox.helpers import ACCOUNT_ID, REGION, kms_error

DAY = 86400


def _xks_key(kms, store_id, xks_key_id="ext-1", **extra):
    return kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=store_id, XksKeyId=xks_key_id, **extra)["KeyMetadata"]


def _state(kms, key_id):
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]


# --- DescribeKey of keys in custom key stores -------------------------------------------------


def test_describe_key_of_xks_key_shows_origin_store_and_external_key(kms, xks_store):
    """KeyMetadata: Origin EXTERNAL_KEY_STORE, CustomKeyStoreId ("present only when the KMS key is
    created in a custom key store"), XksKeyConfiguration.Id."""
    store_id = xks_store(connect=True)
    created = _xks_key(kms, store_id, "ext-42", Description="orders")
    metadata = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert metadata["Origin"] == "EXTERNAL_KEY_STORE"
    assert metadata["CustomKeyStoreId"] == store_id
    assert metadata["XksKeyConfiguration"] == {"Id": "ext-42"}
    assert "CloudHsmClusterId" not in metadata
    assert metadata["KeySpec"] == "SYMMETRIC_DEFAULT" and metadata["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert metadata["KeyState"] == "Enabled" and metadata["Enabled"] is True
    assert metadata["Description"] == "orders"
    assert metadata["CreationDate"] == FROZEN_AT + timedelta(seconds=5)  # after the connect delay


def test_describe_key_of_cloudhsm_key_shows_cluster(kms, hsm_store):
    """KeyMetadata.CloudHsmClusterId: "present only when the KMS key is created in an CloudHSM key
    store"."""
    store_id, cluster_id = hsm_store(connect=True)
    created = kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)["KeyMetadata"]
    metadata = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert (metadata["Origin"], metadata["CustomKeyStoreId"], metadata["CloudHsmClusterId"]) == (
        "AWS_CLOUDHSM",
        store_id,
        cluster_id,
    )
    assert "XksKeyConfiguration" not in metadata


def test_list_keys_lists_keys_of_every_store_in_the_same_shape(kms, xks_store):
    """"There is no API that lists the keys of one store: ListKeys lists every key in the region"."""
    store_id = xks_store(connect=True)
    plain = kms.create_key()["KeyMetadata"]["KeyId"]
    in_store = _xks_key(kms, store_id)["KeyId"]
    keys = kms.list_keys()["Keys"]
    assert [k["KeyId"] for k in keys] == [plain, in_store]
    assert all(set(k) == {"KeyId", "KeyArn"} for k in keys)


# --- Unavailable -------------------------------------------------------------------------------


def test_key_is_unavailable_while_its_store_is_not_connected(kms, sandbox, xks_store):
    """Key states: "A KMS key in an external key store is Unavailable when the custom key store is
    intentionally disconnected from its external key store proxy"; the underlying state is kept
    and returns on reconnect."""
    store_id = xks_store(connect=True)
    key_id = _xks_key(kms, store_id)["KeyId"]
    kms.disable_key(KeyId=key_id)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    assert _state(kms, key_id) == "Unavailable"  # DISCONNECTING
    sandbox.clock.advance(sandbox.disconnect_delay_seconds)
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (metadata["KeyState"], metadata["Enabled"]) == ("Unavailable", False)
    assert connect_and_wait(kms, sandbox, store_id) == "CONNECTED"
    assert _state(kms, key_id) == "Disabled"
    kms.enable_key(KeyId=key_id)
    assert _state(kms, key_id) == "Enabled"


def test_unavailable_key_can_be_described_aliased_and_scheduled_but_not_used(kms, sandbox, xks_store):
    """Disconnect doc: "While a custom key store is disconnected, you can manage the custom key
    store and its KMS keys, but you cannot create or use its KMS keys"."""
    store_id = xks_store(connect=True)
    key_id = _xks_key(kms, store_id)["KeyId"]
    ciphertext = kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    sandbox.clock.advance(sandbox.disconnect_delay_seconds)
    kms.create_alias(AliasName="alias/orders", TargetKeyId=key_id)
    with kms_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    with kms_error("KMSInvalidStateException"):
        kms.decrypt(CiphertextBlob=ciphertext)
    with kms_error("KMSInvalidStateException"):
        kms.generate_data_key(KeyId="alias/orders", KeySpec="AES_256")
    assert kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)["KeyState"] == "PendingDeletion"


def test_pending_deletion_key_in_disconnected_store_reports_pending_deletion(kms, sandbox, xks_store):
    """A key scheduled for deletion keeps KeyState PendingDeletion and its DeletionDate while its
    store is disconnected (so the decommissioning procedure can wait for the date)."""
    store_id = xks_store(connect=True)
    key_id = _xks_key(kms, store_id)["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    sandbox.clock.advance(sandbox.disconnect_delay_seconds)
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert metadata["KeyState"] == "PendingDeletion"
    assert metadata["DeletionDate"] == FROZEN_AT + timedelta(seconds=5, days=7)


def test_cloudhsm_key_creation_needs_two_hsms_even_when_connected(kms, hsm_store):
    store_id, cluster_id = hsm_store(connect=True)
    kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)
    set_active_hsms(ACCOUNT_ID, REGION, cluster_id, 2)
    kms.create_key(Origin="AWS_CLOUDHSM", CustomKeyStoreId=store_id)


# --- ScheduleKeyDeletion / CancelKeyDeletion / purge --------------------------------------------


def test_schedule_key_deletion_defaults_to_30_days_from_the_emulator_clock(kms, sandbox):
    """ScheduleKeyDeletion: "By default, KMS applies a waiting period of 30 days"; the response
    has KeyId (key ARN), DeletionDate, KeyState, PendingWindowInDays."""
    created = kms.create_key()["KeyMetadata"]
    sandbox.clock.advance(3600)
    response = kms.schedule_key_deletion(KeyId=created["KeyId"])
    assert response["KeyId"] == created["Arn"]
    assert response["DeletionDate"] == FROZEN_AT + timedelta(hours=1, days=30)
    assert response["KeyState"] == "PendingDeletion"
    assert response["PendingWindowInDays"] == 30
    metadata = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert (metadata["KeyState"], metadata["Enabled"]) == ("PendingDeletion", False)
    assert metadata["DeletionDate"] == response["DeletionDate"]


@pytest.mark.parametrize("days", [1, 6, 31, 365])
def test_schedule_key_deletion_window_outside_7_to_30_is_a_validation_error(kms, days):
    """PendingWindowInDays: "If you include a value, it must be between 7 and 30, inclusive"."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with kms_error("ValidationException"):
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=days)
    assert _state(kms, key_id) == "Enabled"


def test_schedule_key_deletion_twice_is_an_invalid_state(kms):
    """Key states table: ScheduleKeyDeletion fails for a PendingDeletion key."""
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with kms_error("KMSInvalidStateException", message_contains="is pending deletion"):
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


def test_key_aliases_and_tags_are_gone_once_the_deletion_date_passes(kms, sandbox):
    """ScheduleKeyDeletion: "After the waiting period ends, KMS deletes the KMS key, its key
    material, and all KMS data associated with it, including all aliases that refer to it."""
    key_id = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "payments"}])["KeyMetadata"]["KeyId"]
    keeper = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/doomed", TargetKeyId=key_id)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    sandbox.clock.advance(7 * DAY - 1)
    assert _state(kms, key_id) == "PendingDeletion"
    sandbox.clock.advance(1)
    assert [k["KeyId"] for k in kms.list_keys()["Keys"]] == [keeper]
    assert "alias/doomed" not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=key_id)
    with kms_error("NotFoundException"):
        kms.list_resource_tags(KeyId=key_id)
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId="alias/doomed")


def test_purged_xks_key_frees_its_external_key_and_its_store(kms, sandbox, xks_store):
    """Deleting an external key store: after the keys are deleted (not just scheduled) the store
    can be deleted; the external key can back a new KMS key."""
    store_id = xks_store(connect=True)
    key_id = _xks_key(kms, store_id, "ext-7")["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    sandbox.clock.advance(7 * DAY)
    replacement = _xks_key(kms, store_id, "ext-7")["KeyId"]
    assert replacement != key_id


def test_cancel_key_deletion_returns_the_key_as_disabled(kms, sandbox):
    """CancelKeyDeletion: "When this operation succeeds, the key state of the KMS key is Disabled";
    the key then survives its former DeletionDate."""
    created = kms.create_key()["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=created["KeyId"], PendingWindowInDays=7)
    assert kms.cancel_key_deletion(KeyId=created["KeyId"])["KeyId"] == created["Arn"]
    metadata = kms.describe_key(KeyId=created["KeyId"])["KeyMetadata"]
    assert metadata["KeyState"] == "Disabled" and "DeletionDate" not in metadata
    sandbox.clock.advance(30 * DAY)
    assert _state(kms, created["KeyId"]) == "Disabled"


def test_cancel_key_deletion_of_a_key_not_pending_deletion_is_an_invalid_state(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    with kms_error("KMSInvalidStateException", message_contains="is not pending deletion"):
        kms.cancel_key_deletion(KeyId=key_id)


def test_reschedule_after_cancel_uses_the_new_date(kms, sandbox):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    kms.cancel_key_deletion(KeyId=key_id)
    sandbox.clock.advance(DAY)
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    sandbox.clock.advance(6 * DAY)  # the first date has passed, the second has not
    assert _state(kms, key_id) == "PendingDeletion"
    sandbox.clock.advance(DAY)
    with kms_error("NotFoundException"):
        kms.describe_key(KeyId=key_id)


@pytest.mark.parametrize("operation", ["create_alias", "update_alias"])
def test_alias_cannot_point_at_a_key_pending_deletion(kms, operation):
    """Key states table: CreateAlias (and UpdateAlias) fail for a PendingDeletion key
    (KMSInvalidStateException)."""
    live = kms.create_key()["KeyMetadata"]["KeyId"]
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/existing", TargetKeyId=live)
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    name = "alias/new" if operation == "create_alias" else "alias/existing"
    with kms_error("KMSInvalidStateException"):
        getattr(kms, operation)(AliasName=name, TargetKeyId=doomed)


def test_enable_key_pending_deletion_is_an_invalid_state(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with kms_error("KMSInvalidStateException"):
        kms.enable_key(KeyId=key_id)


def test_encrypt_with_key_pending_deletion_is_an_invalid_state(kms):
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with kms_error("KMSInvalidStateException"):
        kms.encrypt(KeyId=key_id, Plaintext=b"x")


def test_enable_and_disable_a_key_named_by_its_arn(kms):
    """EnableKey / DisableKey KeyId: "Specify the key ID or key ARN of the KMS key" (moto's
    handler failed on an ARN: a 500)."""
    arn = kms.create_key()["KeyMetadata"]["Arn"]
    kms.disable_key(KeyId=arn)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Disabled"
    kms.enable_key(KeyId=arn)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Enabled"
