"""Handlers of what a key is configured with: its key policy, rotation of its key material, its
multi-Region set, and its last use.

moto keeps the policy, the rotation flag and the rotations; the emulator adds what the API text
requires around them (which keys can rotate, PolicyName's default, the multi-Region primary).
"""

from __future__ import annotations

import functools
from typing import Any

from moto.kms.models import Key

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox import keyspecs, paging
from reconciler.sandbox.calls import backend_of, find_key
from reconciler.sandbox.keys import PENDING_IMPORT, key_metadata
from reconciler.sandbox.ops_keys import check_policy, check_tags
from reconciler.sandbox.state import PENDING_DELETION

DEFAULT_ROTATION_PERIOD_DAYS = 365


# --- key policy --------------------------------------------------------------------------------


def _policy_name(params: dict[str, Any]) -> str:
    """PolicyName: "If no policy name is specified, the default value is default. The only valid
    name is default." (another name: NotFoundException, as moto answers)."""
    name = params.get("PolicyName") or "default"
    if name != "default":
        raise exc.NotFoundException("No such policy exists")
    return name


def get_key_policy(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    name = _policy_name(params)
    key = find_key(response, params["KeyId"], aliases=False)
    return {"Policy": key.policy or "{}", "PolicyName": name}


def put_key_policy(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    _policy_name(params)
    key = find_key(response, params["KeyId"], aliases=False)
    check_policy(params["Policy"])
    key.policy = params["Policy"]
    return {}


def list_key_policies(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    find_key(response, params["KeyId"], aliases=False)
    page, next_marker = paging.paginate(
        ["default"], lambda n: n, kind="ListKeyPolicies", limit=params.get("Limit") or 100, marker=params.get("Marker"),
        params=params,
    )
    return paging.page_result("PolicyNames", page, next_marker)


# --- rotation ----------------------------------------------------------------------------------


def _rotatable(response: Any, key_id: str, operation: str, *, check_state: bool = True) -> Key:
    """"Automatic key rotation is supported only on symmetric encryption KMS keys. You cannot
    enable automatic rotation of asymmetric KMS keys, HMAC KMS keys, KMS keys with imported key
    material, or KMS keys in a custom key store." (UnsupportedOperationException)"""
    key = find_key(response, key_id, aliases=False)
    spec = key.key_spec or keyspecs.SYMMETRIC_DEFAULT
    if spec != keyspecs.SYMMETRIC_DEFAULT or key.origin != "AWS_KMS":
        raise exc.UnsupportedOperationException(
            f"{operation} is not supported for {key.arn}: rotation of key material is supported only "
            "on symmetric encryption KMS keys whose key material KMS created."
        )
    if check_state and key.key_state in (PENDING_DELETION, PENDING_IMPORT):
        raise exc.KMSInvalidStateException(f"{key.arn} is {key.key_state}.")
    return key


def enable_key_rotation(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """EnableKeyRotation: a Disabled key cannot have rotation enabled (DisabledException)."""
    key = _rotatable(response, params["KeyId"], "EnableKeyRotation")
    if key.key_state == "Disabled":
        raise exc.DisabledException(f"{key.arn} is disabled.")
    key.key_rotation_status = True
    key.rotation_period_in_days = params.get("RotationPeriodInDays") or DEFAULT_ROTATION_PERIOD_DAYS  # type: ignore[attr-defined]
    return {}


def disable_key_rotation(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = _rotatable(response, params["KeyId"], "DisableKeyRotation")
    if key.key_state == "Disabled":
        raise exc.DisabledException(f"{key.arn} is disabled.")
    key.key_rotation_status = False
    return {}


def get_key_rotation_status(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """"While a KMS key is pending deletion, its key rotation status is false". A key whose key
    material cannot rotate: UnsupportedOperationException, as for EnableKeyRotation."""
    key = find_key(response, params["KeyId"], aliases=False)
    _rotatable(response, params["KeyId"], "GetKeyRotationStatus", check_state=False)
    enabled = bool(key.key_rotation_status) and key.key_state != PENDING_DELETION
    result: dict[str, Any] = {"KeyId": key.arn, "KeyRotationEnabled": enabled}
    if enabled:
        result["RotationPeriodInDays"] = getattr(key, "rotation_period_in_days", DEFAULT_ROTATION_PERIOD_DAYS)
    return result


def rotate_key_on_demand(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """"On-demand key rotation is supported only on symmetric encryption KMS keys. You cannot
    perform on-demand rotation of asymmetric KMS keys, HMAC KMS keys, or KMS keys in a custom key
    store." Its response KeyId: "Identifies the symmetric encryption KMS key" (the key id)."""
    key = _rotatable(response, params["KeyId"], "RotateKeyOnDemand")
    if key.key_state == "Disabled":
        raise exc.DisabledException(f"{key.arn} is disabled.")
    backend_of(response).rotate_key_on_demand(key.id)
    return {"KeyId": key.id}


def list_key_rotations(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = _rotatable(response, params["KeyId"], "ListKeyRotations")
    page, next_marker = paging.paginate(
        list(key.rotations), lambda r: str(r.get("RotationDate")), kind="ListKeyRotations",
        limit=params.get("Limit") or 100, marker=params.get("Marker"), params=params,
    )
    rotations = [{"KeyId": key.id, "RotationDate": r.get("RotationDate"), "RotationType": r.get("RotationType")} for r in page]
    return paging.page_result("Rotations", rotations, next_marker)


# --- multi-Region keys -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _kms_regions() -> frozenset[str]:
    import boto3

    return frozenset(boto3.session.Session().get_available_regions("kms", partition_name="aws"))


def replicate_key(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """ReplicateKey: only a multi-Region primary key can be replicated
    (UnsupportedOperationException), into another Region that has no replica yet
    (AlreadyExistsException)."""
    from moto.kms.models import kms_backends

    key = find_key(response, params["KeyId"], aliases=False)
    region = params["ReplicaRegion"]
    if not key.multi_region:
        raise exc.UnsupportedOperationException(f"{key.arn} is not a multi-Region key.")
    configuration = key.multi_region_configuration
    if configuration["PrimaryKey"]["Arn"] != key.arn:
        raise exc.UnsupportedOperationException(f"{key.arn} is a replica key; replicate the primary key.")
    if region == response.region or any(r["Region"] == region for r in configuration["ReplicaKeys"]):
        raise exc.AlreadyExistsException(f"A replica of {key.id} already exists in {region}.")
    if region not in _kms_regions():
        raise exc.ValidationException(f"{region} is not a Region where KMS is available.")
    check_policy(params.get("Policy"))
    check_tags(params.get("Tags"))
    replica = backend_of(response).replicate_key(key.id, region)
    replica_backend = kms_backends[response.current_account][region]
    if params.get("Policy"):
        replica.policy = params["Policy"]
    if params.get("Description") is not None:
        replica.description = params["Description"]
    if params.get("Tags"):
        replica_backend.tagger.tag_resource(replica.id, params["Tags"])
    return {
        "ReplicaKeyMetadata": key_metadata(replica_backend, replica),
        "ReplicaPolicy": replica.policy,
        "ReplicaTags": replica_backend.list_resource_tags(replica.id)["Tags"],
    }


def update_primary_region(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """UpdatePrimaryRegion: "The primary Region must already have a replica key" - the replica in
    PrimaryRegion becomes the primary key and the primary key a replica."""
    key = find_key(response, params["KeyId"], aliases=False)
    if not key.multi_region:
        raise exc.UnsupportedOperationException(f"{key.arn} is not a multi-Region key.")
    configuration = key.multi_region_configuration
    region = params["PrimaryRegion"]
    if configuration["PrimaryKey"]["Region"] == region:
        return {}
    replica = next((r for r in configuration["ReplicaKeys"] if r["Region"] == region), None)
    if replica is None:
        raise exc.NotFoundException(f"{key.id} has no replica key in {region}.")
    old_primary = dict(configuration["PrimaryKey"])
    configuration["PrimaryKey"] = {"Arn": replica["Arn"], "Region": region}
    configuration["ReplicaKeys"] = [r for r in configuration["ReplicaKeys"] if r["Region"] != region] + [old_primary]
    return {}


# --- last use ----------------------------------------------------------------------------------


def get_key_last_usage(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The emulator records no use of a key: KeyLastUsage is "an empty object" ("If the key has
    not been used since tracking began"), TrackingStartDate the key's creation date ("or the date
    the KMS key was created, whichever is later")."""
    key = find_key(response, params["KeyId"], aliases=False)
    return {"KeyId": key.arn, "KeyLastUsage": {}, "TrackingStartDate": key.creation_date, "KeyCreationDate": key.creation_date}


HANDLERS = {
    "GetKeyPolicy": get_key_policy,
    "PutKeyPolicy": put_key_policy,
    "ListKeyPolicies": list_key_policies,
    "EnableKeyRotation": enable_key_rotation,
    "DisableKeyRotation": disable_key_rotation,
    "GetKeyRotationStatus": get_key_rotation_status,
    "RotateKeyOnDemand": rotate_key_on_demand,
    "ListKeyRotations": list_key_rotations,
    "ReplicateKey": replicate_key,
    "UpdatePrimaryRegion": update_primary_region,
    "GetKeyLastUsage": get_key_last_usage,
}
