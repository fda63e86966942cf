"""The KMS wire protocol of the sandbox: methods added to moto's ``KmsResponse``.

Every KMS request (the six custom-key-store operations and moto's own operations) goes through
:func:`sandbox_call_action`, which

1. counts the call (:data:`call_stats`),
2. sleeps ``faults.latency_ms`` of real time outside the host bracket,
3. applies the per-operation request quotas (token buckets on real monotonic time),
   ``faults.throttle_rate`` (ThrottlingException) and ``faults.error_rate``
   (KMSInternalException) before any effect,
4. runs the request inside ``host().request(operation, mutating)``: settles the backend
   (purge of expired keys, connection transitions), validates the input against the botocore
   model (lengths, patterns, enums, required members) and calls the operation,
5. on a successful mutating request, with probability ``faults.lost_response_rate``, keeps the
   change but answers KMSInternalException (a lost response).

The rules live in :mod:`reconciler.sandbox.backend`; this module parses JSON, validates shapes
and serialises responses with the API model's member names.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections import Counter
from typing import Any, Callable

from moto.kms.models import KmsBackend, kms_backends

from reconciler.sandbox import backend as rules
from reconciler.sandbox import exceptions as exc
from reconciler.sandbox.host import host
from reconciler.sandbox.settings import current

# ---------------------------------------------------------------------------------------------
# Call accounting
# ---------------------------------------------------------------------------------------------


class CallStats:
    """What the emulator served in this process, per KMS operation name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.internal_errors: Counter[str] = Counter()
        self.lost_responses: Counter[str] = Counter()

    def _bump(self, counter: Counter[str], operation: str) -> None:
        with self._lock:
            counter[operation] += 1

    def record_call(self, operation: str) -> None:
        self._bump(self.calls, operation)

    def record_throttled(self, operation: str) -> None:
        self._bump(self.throttled, operation)

    def record_internal_error(self, operation: str) -> None:
        self._bump(self.internal_errors, operation)

    def record_lost_response(self, operation: str) -> None:
        self._bump(self.lost_responses, operation)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.throttled.clear()
            self.internal_errors.clear()
            self.lost_responses.clear()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "throttled": dict(self.throttled),
                "internal_errors": dict(self.internal_errors),
                "lost_responses": dict(self.lost_responses),
            }


call_stats = CallStats()


# ---------------------------------------------------------------------------------------------
# Request quotas: token bucket per (account, region, operation) on real monotonic time
# ---------------------------------------------------------------------------------------------

monotonic: Callable[[], float] = time.monotonic  # tests may replace it


class QuotaBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], list[float]] = {}

    def take(self, account: str, region: str, operation: str, rate: float) -> bool:
        """Take one token; False when the operation is over its requests-per-second quota.
        Capacity is one second of quota."""
        if rate <= 0:
            return False
        capacity = max(rate, 1.0)
        t = monotonic()
        with self._lock:
            bucket = self._buckets.get((account, region, operation))
            if bucket is None:
                bucket = [capacity, t]
                self._buckets[(account, region, operation)] = bucket
            tokens = min(capacity, bucket[0] + (t - bucket[1]) * rate)
            bucket[1] = t
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return True
            bucket[0] = tokens
            return False

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


quota_buckets = QuotaBuckets()

MUTATING_PREFIXES = (
    "Create",
    "Update",
    "Delete",
    "Connect",
    "Disconnect",
    "Schedule",
    "Cancel",
    "Enable",
    "Disable",
    "Tag",
    "Untag",
    "Put",
    "Replicate",
    "Revoke",
    "Retire",
    "Rotate",
    "Import",
)


def is_mutating(operation: str) -> bool:
    return operation.startswith(MUTATING_PREFIXES)


# ---------------------------------------------------------------------------------------------
# Input validation from the botocore model
# ---------------------------------------------------------------------------------------------

# Members where the API text allows an empty string despite a min length:
# UpdateCustomKeyStore XksProxyConnectivity doc "specify a null or empty string for the
# XksProxyVpcEndpointServiceName value".
EMPTY_ALLOWED = {("UpdateCustomKeyStore", "XksProxyVpcEndpointServiceName")}


@functools.lru_cache(maxsize=1)
def service_model() -> Any:
    # moto's session has usually loaded the model already (to list KMS's regions)
    from moto.core.base_backend import AccountSpecificBackend

    return AccountSpecificBackend.get_session()._session.get_service_model("kms")


@functools.lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _value_text(shape: Any, value: Any, path: str) -> str:
    if shape.metadata.get("sensitive"):
        return f"Value at '{path}'"
    return f"Value '{value}' at '{path}'"


def _check_shape(operation: str, shape: Any, value: Any, path: str, member: str, errors: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a structure")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                sub = f"{path}.{_lower_camel(name)}" if path else _lower_camel(name)
                errors.append(f"Value null at '{sub}' failed to satisfy constraint: Member must not be null")
        for name, member_shape in shape.members.items():
            if value.get(name) is not None:
                sub = f"{path}.{_lower_camel(name)}" if path else _lower_camel(name)
                _check_shape(operation, member_shape, value[name], sub, name, errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a string")
            return
        if value == "" and (operation, member) in EMPTY_ALLOWED:
            return
        prefix = _value_text(shape, value, path) + " failed to satisfy constraint: "
        if shape.enum and value not in shape.enum:
            errors.append(prefix + f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
            return
        if "min" in meta and len(value) < meta["min"]:
            errors.append(prefix + f"Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(prefix + f"Member must have length less than or equal to {meta['max']}")
        pattern = meta.get("pattern")
        if pattern:
            compiled = _compiled(pattern)
            if compiled is not None and not compiled.fullmatch(value):
                errors.append(prefix + f"Member must satisfy regular expression pattern: {pattern}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a number")
            return
        prefix = _value_text(shape, value, path) + " failed to satisfy constraint: "
        if "min" in meta and value < meta["min"]:
            errors.append(prefix + f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            errors.append(prefix + f"Member must have value less than or equal to {meta['max']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a boolean")
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a list")
            return
        if "min" in meta and len(value) < meta["min"]:
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {meta['min']}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {meta['max']}")
        for index, item in enumerate(value, start=1):
            if item is not None:
                _check_shape(operation, shape.member, item, f"{path}.{index}.member", member, errors)
    elif kind == "map":
        if not isinstance(value, dict):
            errors.append(f"Value at '{path}' failed to satisfy constraint: Member must be a map")
            return
        for key, item in value.items():
            if item is not None:
                _check_shape(operation, shape.value, item, f"{path}.{key}", member, errors)
    # blob, timestamp, document: not checked


def validate_input(operation: str, params: dict[str, Any]) -> None:
    """ValidationException for every member of ``params`` that breaks the min/max/pattern/enum
    or required constraints of ``operation``'s input shape in the API model."""
    try:
        input_shape = service_model().operation_model(operation).input_shape
    except Exception:  # an operation the model does not know: moto answers it
        return
    if input_shape is None:
        return
    errors: list[str] = []
    _check_shape(operation, input_shape, params, "", "", errors)
    if errors:
        count = len(errors)
        raise exc.ValidationException(
            f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors)
        )


# ---------------------------------------------------------------------------------------------
# The request bracket
# ---------------------------------------------------------------------------------------------


def _error_response(response: Any, error: exc.KmsError) -> tuple[int, dict[str, str], str]:
    headers: dict[str, Any] = dict(getattr(response, "response_headers", {}) or {})
    headers.update(dict(error.get_headers()))
    headers["status"] = str(error.code)
    headers, body = response._enrich_response(headers, error.description)
    return error.code, headers, body


def _base_call_action(response: Any) -> Any:
    from moto.core.responses import BaseResponse

    return BaseResponse.call_action(response)


def sandbox_call_action(self: Any) -> Any:
    """Replaces ``KmsResponse.call_action`` (see the module docstring for the order)."""
    operation = self._get_action() or ""
    settings = current()
    faults = settings.faults
    call_stats.record_call(operation)

    if faults.latency_ms and faults.latency_ms > 0:
        time.sleep(faults.latency_ms / 1000.0)

    account, region = self.current_account, self.region
    rate = faults.quota_for(operation)
    if rate is not None and not quota_buckets.take(account, region, operation, rate):
        call_stats.record_throttled(operation)
        return _error_response(self, exc.ThrottlingException("Rate exceeded"))
    rng = settings.rng
    if faults.throttle_rate > 0 and rng.random() < faults.throttle_rate:
        call_stats.record_throttled(operation)
        return _error_response(self, exc.ThrottlingException("Rate exceeded"))
    if faults.error_rate > 0 and rng.random() < faults.error_rate:
        call_stats.record_internal_error(operation)
        return _error_response(self, exc.KMSInternalException())

    mutating = is_mutating(operation)
    with host().request(operation, mutating):
        backend = kms_backends[account][region]
        rules.settle(backend)
        try:
            _params(self)  # model validation, for moto's operations too
        except exc.KmsError as error:
            result = _error_response(self, error)
        else:
            result = _base_call_action(self)

    status = result[0] if isinstance(result, tuple) else 200
    if (
        mutating
        and int(status) < 300
        and faults.lost_response_rate > 0
        and rng.random() < faults.lost_response_rate
    ):
        call_stats.record_lost_response(operation)
        return _error_response(self, exc.KMSInternalException())
    return result


# ---------------------------------------------------------------------------------------------
# Operation methods (installed on KmsResponse by reconciler.sandbox.install)
# ---------------------------------------------------------------------------------------------


def _params(self: Any) -> dict[str, Any]:
    """The JSON request body, parsed once and validated against the API model."""
    cached = self.__dict__.get("_sandbox_params")
    if cached is not None:
        return cached
    body = self.body
    try:
        params = json.loads(body) if body else {}
    except (TypeError, ValueError):
        params = {}
    if not isinstance(params, dict):
        params = {}
    validate_input(self._get_action() or "", params)
    self._sandbox_params = params
    return params


def _backend(self: Any) -> KmsBackend:
    # fetched fresh per request: the host may replace backend objects when it reloads
    return kms_backends[self.current_account][self.region]


def _original(name: str) -> Callable[..., Any]:
    from moto.kms.responses import KmsResponse

    return getattr(KmsResponse, f"_moto_{name}")


def _dumps(value: Any) -> str:
    return json.dumps(value)


# --- the six custom key store operations ----------------------------------------------------


def create_custom_key_store(self: Any) -> str:
    p = _params(self)
    credential = p.get("XksProxyAuthenticationCredential")
    store = rules.create_custom_key_store(
        _backend(self),
        custom_key_store_name=p["CustomKeyStoreName"],
        custom_key_store_type=p.get("CustomKeyStoreType"),
        cloud_hsm_cluster_id=p.get("CloudHsmClusterId"),
        trust_anchor_certificate=p.get("TrustAnchorCertificate"),
        key_store_password=p.get("KeyStorePassword"),
        xks_proxy_connectivity=p.get("XksProxyConnectivity"),
        xks_proxy_uri_endpoint=p.get("XksProxyUriEndpoint"),
        xks_proxy_uri_path=p.get("XksProxyUriPath"),
        xks_proxy_vpc_endpoint_service_name=p.get("XksProxyVpcEndpointServiceName"),
        xks_proxy_vpc_endpoint_service_owner=p.get("XksProxyVpcEndpointServiceOwner"),
        xks_proxy_access_key_id=credential.get("AccessKeyId") if credential else None,
        xks_proxy_raw_secret_access_key=credential.get("RawSecretAccessKey") if credential else None,
    )
    return _dumps({"CustomKeyStoreId": store.id})


def describe_custom_key_stores(self: Any) -> str:
    p = _params(self)
    stores = rules.describe_custom_key_stores(
        _backend(self),
        custom_key_store_id=p.get("CustomKeyStoreId"),
        custom_key_store_name=p.get("CustomKeyStoreName"),
    )
    page, next_marker = rules.paginate(
        stores,
        lambda s: s.id,
        kind="DescribeCustomKeyStores",
        limit=p.get("Limit") or 1000,
        marker=p.get("Marker"),
    )
    response: dict[str, Any] = {
        "CustomKeyStores": [s.to_entry() for s in page],
        "Truncated": next_marker is not None,
    }
    if next_marker:
        response["NextMarker"] = next_marker
    return _dumps(response)


def connect_custom_key_store(self: Any) -> str:
    p = _params(self)
    rules.connect_custom_key_store(_backend(self), p["CustomKeyStoreId"])
    return "{}"


def disconnect_custom_key_store(self: Any) -> str:
    p = _params(self)
    rules.disconnect_custom_key_store(_backend(self), p["CustomKeyStoreId"])
    return "{}"


def update_custom_key_store(self: Any) -> str:
    p = _params(self)
    credential = p.get("XksProxyAuthenticationCredential")
    rules.update_custom_key_store(
        _backend(self),
        p["CustomKeyStoreId"],
        new_custom_key_store_name=p.get("NewCustomKeyStoreName"),
        key_store_password=p.get("KeyStorePassword"),
        cloud_hsm_cluster_id=p.get("CloudHsmClusterId"),
        xks_proxy_connectivity=p.get("XksProxyConnectivity"),
        xks_proxy_uri_endpoint=p.get("XksProxyUriEndpoint"),
        xks_proxy_uri_path=p.get("XksProxyUriPath"),
        xks_proxy_vpc_endpoint_service_name=p.get("XksProxyVpcEndpointServiceName"),
        xks_proxy_vpc_endpoint_service_owner=p.get("XksProxyVpcEndpointServiceOwner"),
        xks_proxy_access_key_id=credential.get("AccessKeyId") if credential else None,
        xks_proxy_raw_secret_access_key=credential.get("RawSecretAccessKey") if credential else None,
    )
    return "{}"


def delete_custom_key_store(self: Any) -> str:
    p = _params(self)
    rules.delete_custom_key_store(_backend(self), p["CustomKeyStoreId"])
    return "{}"


# --- keys -------------------------------------------------------------------------------------


def create_key(self: Any) -> str:
    p = _params(self)
    origin = p.get("Origin")
    rules.check_create_key_parameters(
        origin=origin,
        custom_key_store_id=p.get("CustomKeyStoreId"),
        xks_key_id=p.get("XksKeyId"),
        key_spec=p.get("KeySpec") or p.get("CustomerMasterKeySpec"),
        key_usage=p.get("KeyUsage"),
        multi_region=p.get("MultiRegion"),
    )
    if origin in rules.CUSTOM_KEY_STORE_ORIGINS:
        backend = _backend(self)
        key = rules.create_key_in_custom_key_store(
            backend,
            custom_key_store_id=p["CustomKeyStoreId"],
            origin=origin,
            xks_key_id=p.get("XksKeyId"),
            policy=p.get("Policy"),
            description=p.get("Description"),
            tags=p.get("Tags"),
        )
        return _dumps({"KeyMetadata": rules.key_metadata(backend, key)})
    return _original("create_key")(self)


def list_keys(self: Any) -> str:
    """ListKeys with paging: "Limit ... must be between 1 and 1000, inclusive. If you do not
    include a value, it defaults to 100." Order: creation order."""
    p = _params(self)
    keys = list(_backend(self).keys.values())
    page, next_marker = rules.paginate(
        keys, lambda k: k.id, kind="ListKeys", limit=p.get("Limit") or 100, marker=p.get("Marker")
    )
    response: dict[str, Any] = {
        "Keys": [{"KeyId": k.id, "KeyArn": k.arn} for k in page],
        "Truncated": next_marker is not None,
    }
    if next_marker:
        response["NextMarker"] = next_marker
    return _dumps(response)


def list_aliases(self: Any) -> str:
    """ListAliases with paging: "If you include a value, it must be between 1 and 100,
    inclusive. If you do not include a value, it defaults to 50." """
    p = _params(self)
    limit = p.get("Limit") or 50
    if limit > 100:
        raise exc.ValidationException(
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
            "constraint: Member must have value less than or equal to 100"
        )
    if p.get("KeyId") is not None:
        aliases = json.loads(_original("list_aliases")(self))["Aliases"]
        page, next_marker = rules.paginate(
            aliases, lambda a: a["AliasName"], kind="ListAliases", limit=limit, marker=p.get("Marker")
        )
    else:
        # moto's order (keys in creation order, each key's aliases, then the reserved aws/
        # aliases that are not taken), but only the page is turned into JSON: an account with
        # thousands of aliases costs O(aliases) cheap steps per page, not a full serialisation
        page, next_marker = _alias_page(self, limit, p.get("Marker"))
    response: dict[str, Any] = {"Aliases": page, "Truncated": next_marker is not None}
    if next_marker:
        response["NextMarker"] = next_marker
    return _dumps(response)


def _alias_page(self: Any, limit: int, marker: str | None) -> tuple[list[dict[str, Any]], str | None]:
    from moto.kms.responses import RESERVED_ALIASE_TARGET_KEY_IDS
    from moto.utilities.utils import get_partition

    entries: list[tuple[str, Any]] = [
        (name, alias) for key in _backend(self).keys.values() for name, alias in key.aliases.items()
    ]
    taken = {name for name, _ in entries}
    region = self.region
    for reserved, target in RESERVED_ALIASE_TARGET_KEY_IDS.items():
        if reserved not in taken:
            arn = f"arn:{get_partition(region)}:kms:{region}:{self.current_account}:{reserved}"
            entries.append((reserved, {"TargetKeyId": target, "AliasArn": arn, "AliasName": reserved}))
    page, next_marker = rules.paginate(entries, lambda e: e[0], kind="ListAliases", limit=limit, marker=marker)
    out = [
        alias if isinstance(alias, dict)
        else {"AliasArn": alias.alias_arn, "AliasName": alias.alias_name, "TargetKeyId": alias.target_key_id}
        for _, alias in page
    ]
    return out, next_marker


def schedule_key_deletion(self: Any) -> str:
    p = _params(self)
    key = rules.schedule_key_deletion(_backend(self), p["KeyId"], p.get("PendingWindowInDays"))
    assert key.deletion_date is not None
    return _dumps(
        {
            "KeyId": key.arn,
            "DeletionDate": rules.epoch_seconds(key.deletion_date),
            "KeyState": rules.PENDING_DELETION,
            "PendingWindowInDays": getattr(key, "pending_window_in_days", None),
        }
    )


def cancel_key_deletion(self: Any) -> str:
    p = _params(self)
    key = rules.cancel_key_deletion(_backend(self), p["KeyId"])
    return _dumps({"KeyId": key.arn})


def _refuse_pending_deletion_target(self: Any, key_id: str | None) -> None:
    if not key_id:
        return
    backend = _backend(self)
    key = backend.keys.get(backend.get_key_id(key_id))
    if key is not None and key.key_state == rules.PENDING_DELETION:
        raise exc.KMSInvalidStateException(f"{key.arn} is pending deletion.")


def _check_alias_name(name: Any) -> None:
    """AliasName: "This value must begin with alias/ followed by a name [...] The alias name cannot
    begin with alias/aws/" (moto accepts a bare "alias/", and refuses only the alias/aws/ names AWS
    uses today, with an error CreateAlias does not list); moto checks the characters."""
    if name == "alias/":
        raise exc.InvalidAliasNameException("AliasName must be alias/ followed by a name, such as alias/ExampleAlias")
    if isinstance(name, str) and name.startswith("alias/aws/"):
        raise exc.InvalidAliasNameException("The alias/aws/ prefix is reserved for AWS managed keys.")


def create_alias(self: Any) -> str:
    """Key states table: CreateAlias fails for a PendingDeletion key (KMSInvalidStateException)."""
    _check_alias_name(_params(self).get("AliasName"))
    _refuse_pending_deletion_target(self, _params(self).get("TargetKeyId"))
    return _original("create_alias")(self)


def update_alias(self: Any) -> str:
    _check_alias_name(_params(self).get("AliasName"))
    _refuse_pending_deletion_target(self, _params(self).get("TargetKeyId"))
    return _original("update_alias")(self)


def enable_key(self: Any) -> str:
    """Key states table: EnableKey/DisableKey fail for a PendingDeletion key."""
    _refuse_pending_deletion_target(self, _params(self).get("KeyId"))
    return _original("enable_key")(self)


def disable_key(self: Any) -> str:
    _refuse_pending_deletion_target(self, _params(self).get("KeyId"))
    return _original("disable_key")(self)


def _check_usable(self: Any, key_id: str | None) -> None:
    if not key_id:
        return
    backend = _backend(self)
    try:
        raw = backend.any_id_to_key_id(key_id)
    except Exception:
        return  # moto reports the unknown key
    key = backend.keys.get(raw) if raw else None
    if key is not None:
        rules.check_key_usable(backend, key)


def _usable_key_wrapper(name: str, parameter: str) -> Callable[[Any], str]:
    def method(self: Any) -> str:
        _check_usable(self, _params(self).get(parameter))
        return _original(name)(self)

    method.__name__ = name
    method.__doc__ = (
        f"{name}: a PendingDeletion key, or a key whose custom key store is not CONNECTED "
        "(Unavailable), cannot be used (KMSInvalidStateException)."
    )
    return method


def decrypt(self: Any) -> str:
    result = _original("decrypt")(self)
    _check_usable(self, json.loads(result).get("KeyId"))
    return result


WIRE_METHODS: dict[str, Callable[..., Any]] = {
    "create_custom_key_store": create_custom_key_store,
    "describe_custom_key_stores": describe_custom_key_stores,
    "connect_custom_key_store": connect_custom_key_store,
    "disconnect_custom_key_store": disconnect_custom_key_store,
    "update_custom_key_store": update_custom_key_store,
    "delete_custom_key_store": delete_custom_key_store,
    "create_key": create_key,
    "list_keys": list_keys,
    "list_aliases": list_aliases,
    "schedule_key_deletion": schedule_key_deletion,
    "cancel_key_deletion": cancel_key_deletion,
    "create_alias": create_alias,
    "update_alias": update_alias,
    "enable_key": enable_key,
    "disable_key": disable_key,
    "encrypt": _usable_key_wrapper("encrypt", "KeyId"),
    "generate_data_key": _usable_key_wrapper("generate_data_key", "KeyId"),
    "re_encrypt": _usable_key_wrapper("re_encrypt", "DestinationKeyId"),
    "decrypt": decrypt,
}
