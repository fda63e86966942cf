"""Handlers of the key operations the emulator answers itself: CreateKey, DescribeKey, the list
operations (with KMS's paging), deletion scheduling, key state, aliases and tags.

The rules are in :mod:`reconciler.sandbox.keys` and :mod:`reconciler.sandbox.keyspecs`; moto
keeps the keys, aliases and tags.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox import keys, keyspecs, paging
from reconciler.sandbox.calls import backend_of, find_key, find_key_quietly, moto
from reconciler.sandbox.keys import PENDING_IMPORT, key_metadata
from reconciler.sandbox.state import CUSTOM_KEY_STORE_ORIGINS, PENDING_DELETION, epoch_seconds


def check_policy(policy: str | None) -> None:
    """A key policy is a JSON policy document (MalformedPolicyDocumentException: "the specified
    policy is not syntactically or semantically correct"): an object whose Statement is a list of
    statements, each with an Effect and, as CreateKey's Policy says, "Each statement in the key
    policy must contain one or more principals". A statement without Action or Resource is
    accepted ("the CreateKey and PutKeyPolicy API requests succeed, even though the policy
    statement is ineffective"). The lockout safety check and the principals' existence are not
    checked (docs/emulator.md)."""
    if policy is None:
        return
    try:
        document = json.loads(policy)
    except ValueError:
        raise exc.MalformedPolicyDocumentException("The key policy is not valid JSON.") from None
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise exc.MalformedPolicyDocumentException("The key policy must be a JSON object with a Statement list.")
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            raise exc.MalformedPolicyDocumentException("Each policy statement must be an object with an Effect of Allow or Deny.")
        if not (statement.get("Principal") or statement.get("NotPrincipal")):
            raise exc.MalformedPolicyDocumentException("Each statement in the key policy must contain one or more principals.")
        for member in ("Action", "NotAction", "Resource", "NotResource"):
            value = statement.get(member)
            if value is not None and not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
                raise exc.MalformedPolicyDocumentException(f"The policy statement's {member} must be a string or a list of strings.")


def check_tags(tags: list[dict[str, Any]] | None) -> None:
    """TagException: "The request was rejected because one or more tags are not valid." Tag keys
    beginning with aws: are reserved for AWS; a tag key may appear once."""
    seen: set[str] = set()
    for tag in tags or ():
        name = tag.get("TagKey", "")
        if name.lower().startswith("aws:"):
            raise exc.TagException(f"Tag key {name} is reserved: tag keys cannot begin with aws:.")
        if name in seen:
            raise exc.TagException(f"Tag key {name} appears more than once.")
        seen.add(name)


def create_key(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    origin = params.get("Origin") or "AWS_KMS"
    keys.check_create_key_parameters(
        origin=origin,
        custom_key_store_id=params.get("CustomKeyStoreId"),
        xks_key_id=params.get("XksKeyId"),
        key_spec=params.get("KeySpec") or params.get("CustomerMasterKeySpec"),
        key_usage=params.get("KeyUsage"),
        multi_region=params.get("MultiRegion"),
    )
    spec, usage = keyspecs.check_spec_and_usage(
        params.get("KeySpec"), params.get("CustomerMasterKeySpec"), params.get("KeyUsage"), origin
    )
    check_policy(params.get("Policy"))
    check_tags(params.get("Tags"))
    backend = backend_of(response)
    if origin in CUSTOM_KEY_STORE_ORIGINS:
        key = keys.create_key_in_custom_key_store(
            backend,
            custom_key_store_id=params["CustomKeyStoreId"],
            origin=origin,
            xks_key_id=params.get("XksKeyId"),
            policy=params.get("Policy"),
            description=params.get("Description"),
            tags=params.get("Tags"),
        )
    else:
        key = backend.create_key(
            params.get("Policy"), usage, spec, params.get("Description") or "", params.get("Tags"),
            bool(params.get("MultiRegion")), origin,
        )
        if origin == "EXTERNAL":
            # "To create a KMS key with no key material (for imported key material), set this
            # value to EXTERNAL": it is PendingImport until ImportKeyMaterial
            key.key_state, key.enabled = PENDING_IMPORT, False
    return {"KeyMetadata": key_metadata(backend, key)}


def describe_key(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    key = find_key(response, params["KeyId"])
    response._validate_key_policy(key.id, "kms:DescribeKey")
    return {"KeyMetadata": key_metadata(backend_of(response), key)}


def list_keys(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """ListKeys Limit: "If you include a value, it must be between 1 and 1000, inclusive. If you
    do not include a value, it defaults to 100." Order: creation order."""
    keys_in_order = list(backend_of(response).keys.values())
    page, next_marker = paging.paginate(
        keys_in_order, lambda k: k.id, kind="ListKeys", limit=params.get("Limit") or 100, marker=params.get("Marker")
    )
    return paging.page_result("Keys", [{"KeyId": k.id, "KeyArn": k.arn} for k in page], next_marker)


def _limit(params: dict[str, Any], default: int, highest: int) -> int:
    """A Limit the API text bounds more tightly than the model ("If you include a value, it must
    be between 1 and N, inclusive")."""
    limit = params.get("Limit") or default
    if limit > highest:
        raise exc.ValidationException(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
            f"constraint: Member must have value less than or equal to {highest}"
        )
    return limit


def list_aliases(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """ListAliases Limit: "If you include a value, it must be between 1 and 100, inclusive. If you
    do not include a value, it defaults to 50." """
    limit = _limit(params, 50, 100)
    if params.get("KeyId") is not None:
        aliases = moto(response, "list_aliases")["Aliases"]
        page, next_marker = paging.paginate(
            aliases, lambda a: a["AliasName"], kind="ListAliases", limit=limit, marker=params.get("Marker"),
            params=params,
        )
    else:
        page, next_marker = _alias_page(response, limit, params.get("Marker"))
    return paging.page_result("Aliases", page, next_marker)


def _alias_page(response: Any, limit: int, marker: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """moto's order (keys in creation order, each key's aliases, then the reserved aws/ aliases
    that are not taken), but only the page is turned into entries: an account with thousands of
    aliases costs O(aliases) cheap steps per page, not a full serialisation."""
    from moto.kms.responses import RESERVED_ALIASE_TARGET_KEY_IDS
    from moto.utilities.utils import get_partition

    entries: list[tuple[str, Any]] = [
        (name, alias) for key in backend_of(response).keys.values() for name, alias in key.aliases.items()
    ]
    taken = {name for name, _ in entries}
    region = response.region
    for reserved, target in RESERVED_ALIASE_TARGET_KEY_IDS.items():
        if reserved not in taken:
            arn = f"arn:{get_partition(region)}:kms:{region}:{response.current_account}:{reserved}"
            entries.append((reserved, {"TargetKeyId": target, "AliasArn": arn, "AliasName": reserved}))
    page, next_marker = paging.paginate(entries, lambda e: e[0], kind="ListAliases", limit=limit, marker=marker)
    out = [
        alias if isinstance(alias, dict)
        else {"AliasArn": alias.alias_arn, "AliasName": alias.alias_name, "TargetKeyId": alias.target_key_id}
        for _, alias in page
    ]
    return out, next_marker


def list_resource_tags(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """ListResourceTags Limit: "If you include a value, it must be between 1 and 50, inclusive.
    If you do not include a value, it defaults to 50." Marker: "Use only the value of NextMarker
    from the truncated response you just received" (another value: InvalidMarkerException)."""
    limit = _limit(params, 50, 50)
    key = find_key(response, params["KeyId"], aliases=False)
    tags = backend_of(response).list_resource_tags(key.id)["Tags"]
    page, next_marker = paging.paginate(
        tags, lambda t: t["TagKey"], kind="ListResourceTags", limit=limit, marker=params.get("Marker"),
        params=params,
    )
    return paging.page_result("Tags", page, next_marker)


def schedule_key_deletion(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """ScheduleKeyDeletion's response: KeyId is "The Amazon Resource Name (key ARN) of the KMS key
    whose deletion is scheduled" (moto answers the id it was given)."""
    find_key(response, params["KeyId"], aliases=False)
    key = keys.schedule_key_deletion(backend_of(response), params["KeyId"], params.get("PendingWindowInDays"))
    assert key.deletion_date is not None
    return {
        "KeyId": key.arn,
        "DeletionDate": epoch_seconds(key.deletion_date),
        "KeyState": PENDING_DELETION,
        "PendingWindowInDays": getattr(key, "pending_window_in_days", None),
    }


def cancel_key_deletion(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """CancelKeyDeletion's response: KeyId is "The Amazon Resource Name (key ARN) of the KMS key
    whose deletion is canceled"."""
    find_key(response, params["KeyId"], aliases=False)
    key = keys.cancel_key_deletion(backend_of(response), params["KeyId"])
    return {"KeyId": key.arn}


def _refuse_pending_deletion(response: Any, key_id: str, *, quietly: bool = False, pending_import: bool = False) -> None:
    """Key states table: the operation fails for a PendingDeletion key (and, with
    ``pending_import``, a PendingImport key): KMSInvalidStateException. ``quietly``: a key that
    cannot be found is left to moto's checks."""
    key = find_key_quietly(response, key_id, aliases=False) if quietly else find_key(response, key_id, aliases=False)
    if key is None:
        return
    if key.key_state == PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")
    if pending_import and key.key_state == PENDING_IMPORT:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending import.")


def _check_alias_name(name: str) -> None:
    """AliasName: "This value must begin with alias/ followed by a name [...] The alias name cannot
    begin with alias/aws/" (moto accepts a bare "alias/", and refuses only the alias/aws/ names
    AWS uses today, with an error CreateAlias does not list); moto checks the rest: the prefix and
    the characters (ValidationException)."""
    if name == "alias/":
        raise exc.InvalidAliasNameException("AliasName must be alias/ followed by a name, such as alias/ExampleAlias")
    if name.startswith("alias/aws/"):
        raise exc.InvalidAliasNameException("The alias/aws/ prefix is reserved for AWS managed keys.")


def create_alias(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Key states table: CreateAlias fails for a PendingDeletion key (KMSInvalidStateException).
    moto checks the rest (an alias as the target, an unknown key, an alias that exists)."""
    _check_alias_name(params["AliasName"])
    _refuse_pending_deletion(response, params["TargetKeyId"], quietly=True)
    moto(response, "create_alias")
    return {}


def update_alias(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateAlias changes the key of an existing alias: an alias that does not exist (any name
    that is not alias/ followed by a name, and the AWS managed alias/aws/ aliases, which cannot be
    changed) is NotFoundException, the only one of its errors that fits. A PendingDeletion target:
    KMSInvalidStateException."""
    name = params["AliasName"]
    backend = backend_of(response)
    if name.startswith("alias/aws/") or not backend.alias_exists(name):
        raise exc.NotFoundException(f"Alias {name} is not found.")
    _refuse_pending_deletion(response, params["TargetKeyId"], quietly=True)
    moto(response, "update_alias")
    return {}


def enable_key(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Key states table: EnableKey and DisableKey fail for a PendingDeletion (or PendingImport)
    key (KMSInvalidStateException). KeyId: "Specify the key ID or key ARN" (moto's own handler
    fails on an ARN)."""
    _refuse_pending_deletion(response, params["KeyId"], pending_import=True)
    backend_of(response).enable_key(find_key(response, params["KeyId"], aliases=False).id)
    return {}


def disable_key(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    _refuse_pending_deletion(response, params["KeyId"], pending_import=True)
    backend_of(response).disable_key(find_key(response, params["KeyId"], aliases=False).id)
    return {}


def tag_resource(response: Any, params: dict[str, Any]) -> dict[str, Any]:
    find_key(response, params["KeyId"], aliases=False)
    check_tags(params["Tags"])
    moto(response, "tag_resource")
    return {}


HANDLERS = {
    "CreateKey": create_key,
    "DescribeKey": describe_key,
    "ListKeys": list_keys,
    "ListAliases": list_aliases,
    "ListResourceTags": list_resource_tags,
    "ScheduleKeyDeletion": schedule_key_deletion,
    "CancelKeyDeletion": cancel_key_deletion,
    "CreateAlias": create_alias,
    "UpdateAlias": update_alias,
    "EnableKey": enable_key,
    "DisableKey": disable_key,
    "TagResource": tag_resource,
}
