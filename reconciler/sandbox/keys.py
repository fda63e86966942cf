"""Keys: CreateKey's parameters, keys in custom key stores, key state, deletion, metadata.

Every rule cites the KMS API Reference text (botocore's KMS service model); docs/kms-rules.md
collects them ("Keys in a custom key store", "Key states").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from moto.kms.models import Key, KmsBackend

from reconciler.sandbox import backing, keyspecs, xks_link
from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.connection import current_store, settle_store
from reconciler.sandbox.settings import current
from reconciler.sandbox.state import (
    CONNECTED,
    CUSTOM_KEY_STORE_ORIGINS,
    EXTERNAL_KEY_STORE,
    PENDING_DELETION,
    UNAVAILABLE,
    epoch_seconds,
    invalid_state,
    key_store_of,
    naive_utc,
    now,
    validation,
)
from reconciler.sandbox.timeline import schedule_purge

MIN_DELETION_WINDOW_DAYS = 7
MAX_DELETION_WINDOW_DAYS = 30
DEFAULT_DELETION_WINDOW_DAYS = 30
PENDING_IMPORT = "PendingImport"


# --- CreateKey parameters and keys in custom key stores ---------------------------------------


def check_create_key_parameters(
    *,
    origin: str | None,
    custom_key_store_id: str | None,
    xks_key_id: str | None,
    key_spec: str | None,
    key_usage: str | None,
    multi_region: bool | None,
) -> None:
    """CreateKey parameter combinations (CreateKey doc, Origin / CustomKeyStoreId / XksKeyId).

    Missing or misplaced parameters -> ValidationException; a key type that a custom key store
    cannot hold ("No other key type is supported in a custom key store", "you cannot create a
    multi-Region key in a custom key store") -> UnsupportedOperationException.
    """
    origin = origin or "AWS_KMS"
    custom_origin = origin in CUSTOM_KEY_STORE_ORIGINS
    if xks_key_id is not None and origin != EXTERNAL_KEY_STORE:
        raise validation(
            "XksKeyId is valid only for KMS keys with an Origin value of EXTERNAL_KEY_STORE."
        )
    if origin == EXTERNAL_KEY_STORE and xks_key_id is None:
        raise validation("XksKeyId is required for a KMS key with an Origin value of EXTERNAL_KEY_STORE.")
    if custom_origin and custom_key_store_id is None:
        raise validation(f"CustomKeyStoreId is required for a KMS key with an Origin value of {origin}.")
    if custom_key_store_id is not None and not custom_origin:
        raise validation(
            "CustomKeyStoreId is valid only for KMS keys with an Origin value of AWS_CLOUDHSM "
            "or EXTERNAL_KEY_STORE."
        )
    if custom_origin:
        if (key_spec or "SYMMETRIC_DEFAULT") != "SYMMETRIC_DEFAULT":
            raise exc.UnsupportedOperationException(
                f"KeySpec {key_spec} is not supported for KMS keys in a custom key store; the "
                "KeySpec value must be SYMMETRIC_DEFAULT."
            )
        if (key_usage or "ENCRYPT_DECRYPT") != "ENCRYPT_DECRYPT":
            raise exc.UnsupportedOperationException(
                f"KeyUsage {key_usage} is not supported for KMS keys in a custom key store; the "
                "KeyUsage value must be ENCRYPT_DECRYPT."
            )
        if multi_region:
            raise exc.UnsupportedOperationException(
                "You cannot create a multi-Region key in a custom key store."
            )


def create_key_in_custom_key_store(
    backend: KmsBackend,
    *,
    custom_key_store_id: str,
    origin: str,
    xks_key_id: str | None = None,
    policy: str | None = None,
    description: str | None = None,
    tags: list[dict[str, str]] | None = None,
) -> Key:
    """CreateKey with Origin AWS_CLOUDHSM or EXTERNAL_KEY_STORE (after
    :func:`check_create_key_parameters`)."""
    store = current_store(backend, custom_key_store_id)
    if CUSTOM_KEY_STORE_ORIGINS.get(origin) != store.store_type:
        raise exc.UnsupportedOperationException(
            f"Origin {origin} is not valid for custom key store {store.id} of type "
            f"{store.store_type}."
        )
    # CustomKeyStoreInvalidStateException: "You requested the CreateKey operation in a custom
    # key store that is not connected. This operations is valid only when the custom key store
    # ConnectionState is CONNECTED."
    if store.connection_state != CONNECTED:
        raise invalid_state(store, "CreateKey", "the store must be CONNECTED")
    if store.is_cloudhsm:
        cluster = backing.find_cluster(backend.account_id, backend.region_name, store.cloud_hsm_cluster_id or "")
        problem = (
            f"CloudHSM cluster {store.cloud_hsm_cluster_id} was not found."
            if cluster is None
            else backing.cluster_configuration_problem(cluster, min_active_hsms=2)
        )
        if problem:
            raise exc.CloudHsmClusterInvalidConfigurationException(problem)
    else:
        assert xks_key_id is not None
        holder = store.xks_keys.get(xks_key_id)
        if holder is not None and holder in backend.keys:
            raise exc.XksKeyAlreadyInUseException(
                f"External key {xks_key_id} is already associated with KMS key {holder} in "
                f"external key store {store.id}."
            )
        faults = current().faults
        if xks_key_id in (getattr(faults, "xks_missing_keys", None) or {}).get(store.name, ()):
            raise exc.XksKeyNotFoundException(
                f"The external key store proxy of {store.id} could not find external key "
                f"{xks_key_id}."
            )
        if xks_key_id in (getattr(faults, "xks_invalid_keys", None) or {}).get(store.name, ()):
            raise exc.XksKeyInvalidConfigurationException(
                f"External key {xks_key_id} must be an enabled AES-256 symmetric key that "
                "performs encryption and decryption."
            )
        # CreateKey: KMS asks the proxy for the external key's metadata (xks_link)
        xks_link.check_key(store, xks_key_id)
    key = backend.create_key(policy, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", description or "", tags, False, origin)
    key.custom_key_store_id = store.id  # type: ignore[attr-defined]
    if store.is_cloudhsm:
        key.cloud_hsm_cluster_id = store.cloud_hsm_cluster_id  # type: ignore[attr-defined]
    else:
        key.xks_key_id = xks_key_id  # type: ignore[attr-defined]
        store.xks_keys[xks_key_id] = key.id  # type: ignore[index]
    return key


# --- key state and metadata -------------------------------------------------------------------


def effective_key_state(backend: KmsBackend, key: Key) -> str:
    """The KeyState KMS reports.

    "A KMS key in a custom key store is Unavailable when the custom key store is intentionally
    disconnected" (Developer Guide, Key states) - here: whenever its store is not CONNECTED. A
    key scheduled for deletion keeps reporting PendingDeletion (with its DeletionDate), since
    the key-state table never lets an Unavailable key be cancelled. The underlying
    Enabled/Disabled/PendingDeletion state is kept on the key.
    """
    if key.key_state == PENDING_DELETION:
        return key.key_state
    valid_to = getattr(key, "valid_to", None)
    if valid_to is not None and now().timestamp() >= valid_to:
        # ImportKeyMaterial ValidTo: "When the key material expires, KMS deletes the key material
        # from the KMS key. Without its key material, the KMS key is unusable."
        return PENDING_IMPORT
    if not getattr(key, "custom_key_store_id", None):
        return key.key_state
    store = key_store_of(backend, key)
    if store is None:
        return UNAVAILABLE
    settle_store(backend, store)
    return key.key_state if store.connection_state == CONNECTED else UNAVAILABLE


_CUSTOMER_MASTER_KEY_SPECS = frozenset(
    keyspecs.RSA_SPECS + keyspecs.ECC_SPECS + keyspecs.HMAC_SPECS + (keyspecs.SYMMETRIC_DEFAULT, "SM2")
)


def multi_region_configuration(key: Key) -> dict[str, Any]:
    """MultiRegionKeyType of this copy of the key (moto shares one configuration between the
    primary and its replicas)."""
    configuration = dict(key.multi_region_configuration)
    configuration["MultiRegionKeyType"] = "PRIMARY" if configuration["PrimaryKey"]["Arn"] == key.arn else "REPLICA"
    return configuration


def key_metadata(backend: KmsBackend, key: Key) -> dict[str, Any]:
    """DescribeKey's KeyMetadata: the members KMS sends for a key of this kind and no other
    (SigningAlgorithms only for signing keys, CustomKeyStoreId only for keys in a store...)."""
    spec = key.key_spec or keyspecs.SYMMETRIC_DEFAULT
    usage = key.key_usage or keyspecs.ENCRYPT_DECRYPT
    state = effective_key_state(backend, key)
    metadata: dict[str, Any] = {
        "AWSAccountId": key.account_id,
        "KeyId": key.id,
        "Arn": key.arn,
        "CreationDate": key.creation_date,
        # KeyMetadata.Enabled: "When KeyState is Enabled this value is true, otherwise it is false."
        "Enabled": state == "Enabled",
        "Description": key.description or "",
        "KeyUsage": usage,
        "KeyState": state,
        "Origin": key.origin,
        "KeyManager": key.key_manager,
        "KeySpec": spec,
        "MultiRegion": bool(key.multi_region),
    }
    # CustomerMasterKeySpec: "The KeySpec and CustomerMasterKeySpec fields have the same value"
    # (for the key specs the deprecated member's enum has)
    if spec in _CUSTOMER_MASTER_KEY_SPECS:
        metadata["CustomerMasterKeySpec"] = spec
    metadata.update(keyspecs.algorithms(spec, usage))
    if key.multi_region:
        metadata["MultiRegionConfiguration"] = multi_region_configuration(key)
    if key.key_state == PENDING_DELETION and key.deletion_date is not None:
        metadata["DeletionDate"] = epoch_seconds(key.deletion_date)
    if key.origin == "EXTERNAL":
        # ExpirationModel: "This value is present only when Origin is EXTERNAL"
        metadata["ExpirationModel"] = getattr(key, "expiration_model", None) or "KEY_MATERIAL_DOES_NOT_EXPIRE"
        valid_to = getattr(key, "valid_to", None)
        if valid_to is not None and metadata["ExpirationModel"] == "KEY_MATERIAL_EXPIRES":
            metadata["ValidTo"] = valid_to
    store_id = getattr(key, "custom_key_store_id", None)
    if store_id:
        metadata["CustomKeyStoreId"] = store_id
        store = key_store_of(backend, key)
        cluster_id = getattr(key, "cloud_hsm_cluster_id", None)
        if cluster_id:
            metadata["CloudHsmClusterId"] = (store.cloud_hsm_cluster_id if store else None) or cluster_id
        xks_key_id = getattr(key, "xks_key_id", None)
        if xks_key_id:
            metadata["XksKeyConfiguration"] = {"Id": xks_key_id}
    return metadata


# --- deletion and use --------------------------------------------------------------------------


def require_key(backend: KmsBackend, key_id: str) -> Key:
    raw = backend.get_key_id(key_id)
    key = backend.keys.get(raw)
    if key is None:
        raise exc.NotFoundException(f"Key '{key_id}' does not exist")
    return key


def schedule_key_deletion(
    backend: KmsBackend, key_id: str, pending_window_in_days: int | None = None
) -> Key:
    """ScheduleKeyDeletion: "you can specify a waiting period of 7-30 days" (default 30) ->
    PendingDeletion with DeletionDate = now + window; a key already PendingDeletion ->
    KMSInvalidStateException (Key states table)."""
    days = DEFAULT_DELETION_WINDOW_DAYS if pending_window_in_days is None else pending_window_in_days
    if not MIN_DELETION_WINDOW_DAYS <= days <= MAX_DELETION_WINDOW_DAYS:
        bound = "greater than or equal to 7" if days < MIN_DELETION_WINDOW_DAYS else "less than or equal to 30"
        raise validation(
            f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to "
            f"satisfy constraint: Member must have value {bound}"
        )
    key = require_key(backend, key_id)
    if key.key_state == PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")
    due = naive_utc(now()) + timedelta(days=days)
    key.enabled = False
    key.key_state = PENDING_DELETION
    key.deletion_date = due
    key.pending_window_in_days = days  # type: ignore[attr-defined]
    schedule_purge(backend, key, due)
    return key


def cancel_key_deletion(backend: KmsBackend, key_id: str) -> Key:
    """CancelKeyDeletion: "When this operation succeeds, the key state of the KMS key is
    Disabled"; a key not PendingDeletion -> KMSInvalidStateException."""
    key = require_key(backend, key_id)
    if key.key_state != PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is not pending deletion.")
    key.key_state = "Disabled"
    key.enabled = False
    key.deletion_date = None
    return key
