"""The manifest models: one ``KeyStore`` document, validated offline against every rule KMS states.

Field names are the YAML keys (camelCase) exactly. Every model forbids unknown fields and is
strict: a string where a mapping is expected (or a number where a string is expected) is an
error, never coerced. Lengths and patterns come from the KMS API model that ships with botocore
(``CreateCustomKeyStore``, ``CreateKey``, ``CreateAlias``, ``TagResource``).

Rules that depend on more than one field (which settings a store ``type`` needs, VPC versus
public connectivity, what a key of each store type must name, what ``state: absent`` may leave
out) live in :meth:`KeyStoreSpec._cross_field_rules`, which reports its findings together with
the per-field errors so that a user sees every problem at once.

Secret values never pass through these models: the XKS ``secretAccessKey`` and the CloudHSM
``keyStorePassword`` are accepted only as :class:`SecretRef` references, and an inline value is
rejected without being echoed (see :func:`_redact_inline_secrets`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from reconciler.manifest.constraints import (
    ACCESS_KEY_ID,
    ACCOUNT,
    ALIAS,
    API_VERSION,
    CLOUDHSM,
    CLUSTER_ID,
    DEFAULT_PENDING_WINDOW_DAYS,
    DESCRIPTION,
    ENV_NAME,
    FILE_PATH,
    KIND,
    PUBLIC,
    REGION,
    SENSITIVE_FIELDS,
    STORE_NAME,
    TAG_KEY,
    TAG_VALUE,
    TRUST_ANCHOR,
    URI_ENDPOINT,
    URI_PATH,
    VPC,
    VPCE_SERVICE_NAME,
    XKS,
    XKS_KEY_ID,
    ConnectionState,
    KmsString,
    StoreState,
    StoreType,
    WindowDays,
    XksConnectivity,
)


# --------------------------------------------------------------------------------------------
# Secret references


class _Redacted:
    """Stands in for an inline secret so that no error object ever holds the value."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return "'(sensitive)'"

    __str__ = __repr__


def yaml_type_name(value: Any) -> str:
    """How a YAML user would call the type of a loaded value ("a mapping", "a number", ...)."""
    if isinstance(value, _Redacted):
        return value.kind
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null (an empty value)"
    if isinstance(value, (dict, BaseModel)):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    import datetime

    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    return "a " + type(value).__name__


def _redact(value: Any) -> Any:
    return value if isinstance(value, (dict, BaseModel, _Redacted)) else _Redacted(yaml_type_name(value))


def _redact_inline_secrets(data: Any, *path: str) -> Any:
    """A copy of ``data`` in which a non-reference value at ``path`` is replaced by a stand-in."""
    if not isinstance(data, dict):
        return data
    head, *rest = path
    if head not in data:
        return data
    copy = dict(data)
    copy[head] = _redact_inline_secrets(data[head], *rest) if rest else _redact(data[head])
    return copy


class SecretRef(BaseModel):
    """A reference to a secret, resolved only when a step needs the value."""

    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, hide_input_in_errors=True,
        title="SecretRef",
        json_schema_extra={"oneOf": [{"required": ["fromEnv"]}, {"required": ["fromFile"]}]},
    )

    fromEnv: Optional[Annotated[str, ENV_NAME]] = Field(
        default=None, description="Name of the environment variable that holds the value.")
    fromFile: Optional[Annotated[str, FILE_PATH]] = Field(
        default=None,
        description="Path of a file that holds the value, relative to the manifest's directory. It must "
                    "resolve (after symlinks) inside the manifests' root directory. A trailing newline is "
                    "dropped.")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.fromEnv is None) == (self.fromFile is None):
            raise PydanticCustomError("secret_ref", "set exactly one of fromEnv or fromFile")
        return self

    def describe(self) -> str:
        """Where the value comes from, for messages ("environment variable X" / "file 'p'")."""
        if self.fromEnv is not None:
            return f"environment variable {self.fromEnv}"
        return f"file {self.fromFile!r}"

    def __str__(self) -> str:
        return f"{{fromEnv: {self.fromEnv}}}" if self.fromEnv is not None else f"{{fromFile: {self.fromFile}}}"


def _reject_inline_secret(value: Any) -> Any:
    if isinstance(value, (dict, SecretRef)):
        return value
    raise PydanticCustomError(
        "inline_secret",
        f"inline secrets are not allowed (got {yaml_type_name(value)}, not shown); reference the "
        "value instead: {fromEnv: NAME} or {fromFile: PATH}")


SecretOnly = Annotated[SecretRef, BeforeValidator(_reject_inline_secret)]
"""A field that accepts only a reference, never the secret itself."""


def _literal_or_ref(value: Any) -> str | None:
    if isinstance(value, str):
        return "literal"
    if isinstance(value, (dict, SecretRef)):
        return "ref"
    return None


def _literal_or_ref_type(literal: KmsString) -> Any:
    return Annotated[
        Union[Annotated[Annotated[str, literal], Tag("literal")], Annotated[SecretRef, Tag("ref")]],
        Discriminator(
            _literal_or_ref,
            custom_error_type="literal_or_ref",
            custom_error_message="expected a string or a reference {fromEnv: NAME} / {fromFile: PATH}",
        ),
    ]


AccessKeyIdValue = _literal_or_ref_type(ACCESS_KEY_ID)
TrustAnchorValue = _literal_or_ref_type(TRUST_ANCHOR)

# --------------------------------------------------------------------------------------------
# The models

_CONFIG = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)


class Metadata(BaseModel):
    """Identifies the key store."""

    model_config = _CONFIG

    name: Annotated[str, STORE_NAME] = Field(
        description="The custom key store's name (CustomKeyStoreName), 1-256 characters, unique per "
                    "account and region. It identifies the store: renaming it here means a different store.")


class XksCredential(BaseModel):
    """The credential KMS uses to authenticate to the XKS proxy (XksProxyAuthenticationCredential)."""

    model_config = _CONFIG

    accessKeyId: Optional[AccessKeyIdValue] = Field(  # type: ignore[valid-type]
        default=None,
        description="The access key id the proxy expects: 20-30 characters of A-Z and 2-7, written "
                    "literally or as {fromEnv: NAME} / {fromFile: PATH}. KMS reports it back, so drift is "
                    "detected.")
    secretAccessKey: Optional[SecretOnly] = Field(
        default=None,
        description="The proxy's secret access key (43-64 base64 characters), ONLY as a reference "
                    "{fromEnv: NAME} or {fromFile: PATH}; an inline value is refused. KMS never reports it "
                    "back.")

    @model_validator(mode="before")
    @classmethod
    def _redact(cls, data: Any) -> Any:
        return _redact_inline_secrets(data, "secretAccessKey")


class XksSpec(BaseModel):
    """External key store (XKS) proxy settings. Required for type EXTERNAL_KEY_STORE."""

    model_config = _CONFIG

    connectivity: Optional[XksConnectivity] = Field(
        default=None,
        description="How KMS reaches the proxy (XksProxyConnectivity): PUBLIC_ENDPOINT over the internet, "
                    "or VPC_ENDPOINT_SERVICE through an Amazon VPC endpoint service. Changing it needs the "
                    "store disconnected and a new uriEndpoint.")
    uriEndpoint: Optional[Annotated[str, URI_ENDPOINT]] = Field(
        default=None,
        description="https:// plus the proxy's host name (letters, digits, dots, hyphens), no port and no "
                    "path (XksProxyUriEndpoint, 10-128 characters). For VPC_ENDPOINT_SERVICE it is the "
                    "endpoint service's private DNS name.")
    uriPath: Optional[Annotated[str, URI_PATH]] = Field(
        default=None,
        description="The proxy API's path, ending in /kms/xks/v<N>, optionally after a prefix "
                    "(XksProxyUriPath, 10-128 characters), e.g. /kms/xks/v1 or /example/kms/xks/v1.")
    vpcEndpointServiceName: Optional[Annotated[str, VPCE_SERVICE_NAME]] = Field(
        default=None,
        description="The Amazon VPC endpoint service's name (XksProxyVpcEndpointServiceName). Required for "
                    "VPC_ENDPOINT_SERVICE, not allowed for PUBLIC_ENDPOINT.")
    vpcEndpointServiceOwner: Optional[Annotated[str, ACCOUNT]] = Field(
        default=None,
        description="The 12-digit account that owns the VPC endpoint service, when it is not the store's "
                    "account (XksProxyVpcEndpointServiceOwner). VPC_ENDPOINT_SERVICE only.")
    credential: Optional[XksCredential] = Field(
        default=None, description="The proxy authentication credential.")


class CloudHsmSpec(BaseModel):
    """CloudHSM key store settings. Required for type AWS_CLOUDHSM."""

    model_config = _CONFIG

    clusterId: Optional[Annotated[str, CLUSTER_ID]] = Field(
        default=None,
        description="The AWS CloudHSM cluster (CloudHsmClusterId), e.g. cluster-jxhlf7644ne. One cluster "
                    "per store; it can later change only to a related cluster (a backup's).")
    trustAnchorCertificate: Optional[TrustAnchorValue] = Field(  # type: ignore[valid-type]
        default=None,
        description="The cluster's trust anchor certificate (the customerCA.crt PEM), literal or "
                    "{fromFile: customerCA.crt}. It cannot be changed after the store is created.")
    keyStorePassword: Optional[SecretOnly] = Field(
        default=None,
        description="The kmsuser crypto user's password (7-32 characters), ONLY as a reference "
                    "{fromEnv: NAME} or {fromFile: PATH}; an inline value is refused. KMS never reports it "
                    "back.")

    @model_validator(mode="before")
    @classmethod
    def _redact(cls, data: Any) -> Any:
        return _redact_inline_secrets(data, "keyStorePassword")


class ManagedKey(BaseModel):
    """A symmetric KMS key in the store, with its alias, description, enabled state and tags."""

    model_config = _CONFIG

    alias: Optional[Annotated[str, ALIAS]] = Field(
        default=None,
        description="The key's alias, e.g. alias/payments-primary: 'alias/' then letters, digits, '/', "
                    "'_' or '-' (no ':'), not under alias/aws/. Required for keys of a CloudHSM store, where it "
                    "identifies the key; optional for XKS keys. Unique per account and region.")
    xksKeyId: Optional[Annotated[str, XKS_KEY_ID]] = Field(
        default=None,
        description="The external key's id in the XKS proxy (XksKeyId): 1-128 letters, digits, '-', '_', '.'. "
                    "Required for keys of an XKS store, where it identifies the key; not allowed for CloudHSM "
                    "keys. One KMS key per external key in a store.")
    description: Annotated[str, DESCRIPTION] = Field(
        default="", description="The key's description, at most 8192 characters.")
    enabled: bool = Field(default=True, description="Whether the key is enabled (usable) or disabled.")
    tags: dict[Annotated[str, TAG_KEY], Annotated[str, TAG_VALUE]] = Field(
        default_factory=dict,
        description="Tags on the key: keys of 1-128 characters (not starting with aws:), values of "
                    "0-256 characters. Tags not listed here are removed from the key.")

    @property
    def identity(self) -> str:
        """What identifies the key in its store: the XksKeyId for XKS keys, else the alias."""
        return self.xksKeyId or self.alias or ""


# Kept for callers that prefer the longer name.
KeySpec = ManagedKey


class DeletionSpec(BaseModel):
    """How keys of this store are deleted."""

    model_config = _CONFIG

    pendingWindowDays: Annotated[int, WindowDays()] = Field(
        default=DEFAULT_PENDING_WINDOW_DAYS,
        description="Waiting period, 7-30 days (KMS default 30), for keys of this store that are scheduled "
                    "for deletion (also when the whole store is decommissioned). Deletion is irreversible "
                    "once the window ends.")
    quarantineDays: int = Field(
        default=0, ge=0, le=365,
        description="Days, 0-365, a decommission keeps the store disconnected (its keys unusable but "
                    "recoverable) before it schedules the keys' deletion; 0 schedules them in the first "
                    "run. The quarantine's start is recorded as a tag on each key of the store "
                    "(reconciler:quarantine-started), so any machine sees it; putting the store back to "
                    "present ends the quarantine and removes the tags.")
    refuseIfUsedWithinDays: int = Field(
        default=30, ge=0, le=90,
        description="Days, 0-90 (CloudTrail's event history keeps 90): the plan refuses to schedule the "
                    "deletion of a key whose last cryptographic use (CloudTrail LookupEvents) is more "
                    "recent, unless --allow-recent-use; 0 turns the check off. With a quarantine, any "
                    "attempt to use a key during the quarantine, failed ones included, refuses its "
                    "deletion, and uses from before it do not count.")


def _rule_error(kind: str, loc: tuple[Any, ...], why: str) -> dict[str, Any]:
    template = "Field required ({why})" if kind == "missing" else "{why}"
    return {"type": PydanticCustomError(kind, template, {"why": why}), "loc": loc, "input": None}


def _not_allowed(loc: tuple[Any, ...], why: str) -> dict[str, Any]:
    return _rule_error("not_allowed", loc, why)


def _require(container: Any, loc: tuple[Any, ...], why: str) -> list[dict[str, Any]]:
    """An error if ``container`` (the mapping at ``loc[:-1]``) lacks ``loc[-1]`` or leaves it empty."""
    if not isinstance(container, dict):
        return []
    name = loc[-1]
    if name not in container:
        return [_rule_error("missing", loc, why)]
    if container[name] is None:
        return [_rule_error("empty", loc, f"is empty; {why}")]
    return []


def _as_line_error(error: Any) -> dict[str, Any]:
    return {"type": PydanticCustomError(error["type"], error["msg"], error.get("ctx")),
            "loc": error["loc"], "input": error.get("input")}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_SPEC_JSON_SCHEMA_RULES: list[dict[str, Any]] = [
    {   # XKS store: xks settings required (unless absent), cloudHsm not allowed, keys need xksKeyId
        "if": {"properties": {"type": {"const": XKS}}, "required": ["type"]},
        "then": {"not": {"required": ["cloudHsm"]}},
    },
    {
        "if": {"properties": {"type": {"const": XKS}, "state": {"not": {"const": "absent"}}},
               "required": ["type"]},
        "then": {
            "required": ["xks"],
            "properties": {
                "xks": {"required": ["connectivity", "uriEndpoint", "uriPath", "credential"],
                        "properties": {"credential": {"required": ["accessKeyId", "secretAccessKey"]}}},
                "keys": {"items": {"required": ["xksKeyId"]}},
            },
        },
    },
    {
        "if": {"properties": {"type": {"const": CLOUDHSM}}, "required": ["type"]},
        "then": {"not": {"required": ["xks"]},
                 "properties": {"keys": {"items": {"not": {"required": ["xksKeyId"]}}}}},
    },
    {
        "if": {"properties": {"type": {"const": CLOUDHSM}, "state": {"not": {"const": "absent"}}},
               "required": ["type"]},
        "then": {
            "required": ["cloudHsm"],
            "properties": {
                "cloudHsm": {"required": ["clusterId", "trustAnchorCertificate", "keyStorePassword"]},
                "keys": {"items": {"required": ["alias"]}},
            },
        },
    },
    {
        "if": {"properties": {"xks": {"properties": {"connectivity": {"const": PUBLIC}},
                                      "required": ["connectivity"]}},
               "required": ["xks"]},
        "then": {"properties": {"xks": {"allOf": [{"not": {"required": ["vpcEndpointServiceName"]}},
                                                  {"not": {"required": ["vpcEndpointServiceOwner"]}}]}}},
    },
    {
        "if": {"properties": {"state": {"not": {"const": "absent"}},
                              "xks": {"properties": {"connectivity": {"const": VPC}},
                                      "required": ["connectivity"]}},
               "required": ["xks"]},
        "then": {"properties": {"xks": {"required": ["vpcEndpointServiceName"]}}},
    },
]


class KeyStoreSpec(BaseModel):
    """The desired state of one custom key store and its keys."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True,
                              json_schema_extra={"allOf": _SPEC_JSON_SCHEMA_RULES})

    region: Optional[Annotated[str, REGION]] = Field(
        default=None,
        description="AWS region of the store. Optional: otherwise --region, AWS_REGION or AWS_DEFAULT_REGION.")
    account: Optional[Annotated[str, ACCOUNT]] = Field(
        default=None,
        description="12-digit AWS account id, quoted. Optional: when set, apply refuses to run against "
                    "any other account.")
    type: StoreType = Field(
        description="The store type (CustomKeyStoreType): EXTERNAL_KEY_STORE or AWS_CLOUDHSM. It can never "
                    "change once the store exists.")
    state: StoreState = Field(
        default="present",
        description="present: the store exists as described. absent: decommission it (schedule every key "
                    "of the store for deletion, disconnect, and delete the store once the keys are gone, "
                    "which takes pendingWindowDays and several runs).")
    connection: ConnectionState = Field(
        default="connected",
        description="Whether the store should be connected (keys usable) or disconnected (keys "
                    "unavailable; reversible and free).")
    xks: Optional[XksSpec] = Field(
        default=None,
        description="XKS proxy settings; required for EXTERNAL_KEY_STORE (unless state is absent), not "
                    "allowed for AWS_CLOUDHSM.")
    cloudHsm: Optional[CloudHsmSpec] = Field(
        default=None,
        description="CloudHSM settings; required for AWS_CLOUDHSM (unless state is absent), not allowed "
                    "for EXTERNAL_KEY_STORE.")
    keys: list[ManagedKey] = Field(
        default_factory=list,
        description="The KMS keys the store should hold. Keys of the store that are not listed are "
                    "reported, never deleted, unless the store is decommissioned (state: absent), in which "
                    "case every key of the store is scheduled for deletion and this list is ignored.")
    deletion: DeletionSpec = Field(
        default_factory=DeletionSpec, description="Key deletion settings.")

    @model_validator(mode="wrap")
    @classmethod
    def _validate_all_at_once(cls, data: Any, handler: Any) -> KeyStoreSpec:
        errors: list[dict[str, Any]] = []
        result = None
        try:
            result = handler(data)
        except ValidationError as exc:
            errors.extend(_as_line_error(e) for e in exc.errors())
        if isinstance(data, dict):
            errors.extend(cls._cross_field_rules(data))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors, hide_input=True)  # type: ignore[arg-type]
        return result  # type: ignore[return-value]

    @staticmethod
    def _cross_field_rules(spec: dict[str, Any]) -> list[dict[str, Any]]:
        """Rules spanning fields, checked on the raw input so they show up with the field errors."""
        out: list[dict[str, Any]] = []
        store_type = spec.get("type")
        present = spec.get("state", "present") != "absent"
        xks, hsm = spec.get("xks"), spec.get("cloudHsm")
        keys = spec.get("keys") if isinstance(spec.get("keys"), list) else []

        if store_type == XKS:
            if "cloudHsm" in spec:
                out.append(_not_allowed(("cloudHsm",), "cloudHsm settings are only for type AWS_CLOUDHSM; "
                                                       "remove them (this store is EXTERNAL_KEY_STORE)"))
            if present:
                why = "an EXTERNAL_KEY_STORE store needs it"
                out += _require(spec, ("xks",), why)
                for field in ("connectivity", "uriEndpoint", "uriPath", "credential"):
                    out += _require(xks, ("xks", field), why)
                cred = xks.get("credential") if isinstance(xks, dict) else None
                for field in ("accessKeyId", "secretAccessKey"):
                    out += _require(cred, ("xks", "credential", field),
                                    "the proxy credential needs both accessKeyId and secretAccessKey")
                for i, key in enumerate(keys):
                    out += _require(key, ("keys", i, "xksKeyId"),
                                    "keys of an EXTERNAL_KEY_STORE store are identified by their external key id")
        elif store_type == CLOUDHSM:
            if "xks" in spec:
                out.append(_not_allowed(("xks",), "xks settings are only for type EXTERNAL_KEY_STORE; "
                                                  "remove them (this store is AWS_CLOUDHSM)"))
            if present:
                why = "an AWS_CLOUDHSM store needs it"
                out += _require(spec, ("cloudHsm",), why)
                for field in ("clusterId", "trustAnchorCertificate", "keyStorePassword"):
                    out += _require(hsm, ("cloudHsm", field), why)
                for i, key in enumerate(keys):
                    out += _require(key, ("keys", i, "alias"),
                                    "keys of an AWS_CLOUDHSM store are identified by their alias")
            for i, key in enumerate(keys):
                if isinstance(key, dict) and "xksKeyId" in key:
                    out.append(_not_allowed(("keys", i, "xksKeyId"),
                                            "xksKeyId is only for keys of an EXTERNAL_KEY_STORE store"))

        if isinstance(xks, dict):
            connectivity = xks.get("connectivity")
            if connectivity == PUBLIC:
                for field in ("vpcEndpointServiceName", "vpcEndpointServiceOwner"):
                    if field in xks:
                        out.append(_not_allowed(("xks", field),
                                                f"{field} is only for connectivity VPC_ENDPOINT_SERVICE; remove "
                                                "it or change connectivity"))
            elif connectivity == VPC and present:
                out += _require(xks, ("xks", "vpcEndpointServiceName"),
                                "connectivity VPC_ENDPOINT_SERVICE needs the endpoint service's name")

        seen: dict[tuple[str, str], int] = {}
        for i, key in enumerate(keys):
            if not isinstance(key, dict):
                continue
            for field in ("xksKeyId", "alias"):
                value = key.get(field)
                if not isinstance(value, str):
                    continue
                first = seen.setdefault((field, value), i)
                if first != i:
                    what = ("one KMS key per external key in a store" if field == "xksKeyId"
                            else "an alias names one key")
                    out.append(_not_allowed(("keys", i, field),
                                            f"duplicate {field} {value!r}: keys[{first}] already uses it ({what})"))
        return out

    @property
    def present(self) -> bool:
        return self.state == "present"


class KeyStoreManifest(BaseModel):
    """One KeyStore document: a custom key store (XKS or CloudHSM) and the KMS keys it should hold."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True,
                              title="KeyStore")

    apiVersion: Literal["reconciler/v1"] = Field(description="Always reconciler/v1.")
    kind: Literal["KeyStore"] = Field(description="Always KeyStore.")
    metadata: Metadata = Field(description="The store's identity: its name.")
    spec: KeyStoreSpec = Field(description="The desired state of the store and its keys.")

    @model_validator(mode="before")
    @classmethod
    def _redact(cls, data: Any) -> Any:
        data = _redact_inline_secrets(data, "spec", "xks", "credential", "secretAccessKey")
        return _redact_inline_secrets(data, "spec", "cloudHsm", "keyStorePassword")

    @property
    def name(self) -> str:
        return self.metadata.name


__all__ = [
    "API_VERSION",
    "KIND",
    "CloudHsmSpec",
    "ConnectionState",
    "DeletionSpec",
    "KeySpec",
    "KeyStoreManifest",
    "KeyStoreSpec",
    "KmsString",
    "ManagedKey",
    "Metadata",
    "SecretRef",
    "SENSITIVE_FIELDS",
    "StoreState",
    "StoreType",
    "XksConnectivity",
    "XksCredential",
    "XksSpec",
]
