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

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Tag,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from reconciler.regions import region_problem

API_VERSION = "reconciler/v1"
KIND = "KeyStore"

StoreType = Literal["EXTERNAL_KEY_STORE", "AWS_CLOUDHSM"]
StoreState = Literal["present", "absent"]
ConnectionState = Literal["connected", "disconnected"]
XksConnectivity = Literal["PUBLIC_ENDPOINT", "VPC_ENDPOINT_SERVICE"]

XKS = "EXTERNAL_KEY_STORE"
CLOUDHSM = "AWS_CLOUDHSM"
PUBLIC = "PUBLIC_ENDPOINT"
VPC = "VPC_ENDPOINT_SERVICE"

MIN_PENDING_WINDOW_DAYS = 7
MAX_PENDING_WINDOW_DAYS = 30
DEFAULT_PENDING_WINDOW_DAYS = 30

# Fields whose input is never repeated in a message (secrets, and the XKS access key id, which
# botocore marks sensitive too).
SENSITIVE_FIELDS = frozenset({"secretAccessKey", "keyStorePassword", "accessKeyId"})


# --------------------------------------------------------------------------------------------
# Constrained strings: one definition gives the validation, the human message and the JSON Schema


def _show(value: str, limit: int = 60) -> str:
    text = value if len(value) <= limit else value[: limit - 3] + "..."
    return repr(text)


@dataclass(frozen=True)
class KmsString:
    """A string constraint taken from the KMS API model.

    ``pattern`` is matched against the whole string (ECMA-262-compatible, so the same text goes
    into the JSON Schema); ``check`` may return a more specific message first; ``expect`` says
    what a valid value looks like; ``echo=False`` keeps the input out of messages.
    """

    expect: str
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    check: Callable[[str], str | None] | None = None
    echo: bool = True
    not_pattern: str | None = None

    def validate(self, value: str) -> str:
        got = f", got {_show(value)}" if self.echo else ""
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise PydanticCustomError("kms_format", problem + got)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise PydanticCustomError("kms_format", f"must be {self.expect}{got}")
        if self.not_pattern is not None and re.match(self.not_pattern, value):
            raise PydanticCustomError("kms_format", f"must be {self.expect}{got}")
        if self.min_length is not None and len(value) < self.min_length:
            raise PydanticCustomError(
                "kms_length",
                f"must be at least {self.min_length} characters long (got {len(value)}){got}")
        if self.max_length is not None and len(value) > self.max_length:
            raise PydanticCustomError(
                "kms_length", f"must be at most {self.max_length} characters long (got {len(value)})")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        if self.min_length is not None:
            out["minLength"] = self.min_length
        if self.max_length is not None:
            out["maxLength"] = self.max_length
        if self.pattern is not None:
            out["pattern"] = self.pattern
        if self.not_pattern is not None:
            out["not"] = {"pattern": self.not_pattern}
        return out


def _uri_endpoint_problem(value: str) -> str | None:
    if not value.startswith("https://"):
        return "must start with https:// (KMS talks to the XKS proxy over TLS only)"
    host = value[len("https://"):]
    if "/" in host:
        if host.endswith("/") and "/" not in host[:-1]:
            return "must not end in '/'; write the host only, e.g. https://xks.example.com"
        return "must not include a path; put the path in spec.xks.uriPath"
    if ":" in host:
        return "must not include a port; the proxy must listen on port 443"
    if not re.fullmatch(r"[a-zA-Z0-9.-]+", host):
        return "must be https:// followed by a host name of letters, digits, dots and hyphens"
    return None


def _uri_path_problem(value: str) -> str | None:
    if not re.search(r"/kms/xks/v[0-9]{1,2}$", value):
        return "must end in /kms/xks/v<N> (e.g. /kms/xks/v1), optionally after a prefix (/prefix/kms/xks/v1)"
    prefix = value[: value.rindex("/kms/xks/v")]
    if prefix and not re.fullmatch(r"/[a-zA-Z0-9/_-]+", prefix):
        return ("must have a prefix that starts with '/' and holds only letters, digits, '/', '_' "
                "and '-' before /kms/xks/v<N>")
    return None


def _tag_key_problem(value: str) -> str | None:
    if value.lower().startswith("aws:"):
        return "must not start with 'aws:' (the prefix is reserved for AWS)"
    return None


def _alias_problem(value: str) -> str | None:
    if not value.startswith("alias/"):
        return "must start with 'alias/' (e.g. alias/payments-primary)"
    if value.startswith("alias/aws/"):
        return "must not start with 'alias/aws/' (reserved for AWS managed keys)"
    return None


_NAME = KmsString(expect="1 to 256 characters", min_length=1, max_length=256)
_REGION = KmsString(expect="an AWS region name such as us-east-1", check=region_problem,
                    pattern=r"^[a-z]{2,}(-[a-z]+)+-[0-9]{1,2}$")
_ACCOUNT = KmsString(expect="a 12-digit AWS account id (quote it in YAML)", pattern=r"^[0-9]{12}$")
_URI_ENDPOINT = KmsString(expect="https:// followed by a host name of letters, digits, dots and hyphens",
                          pattern=r"^https://[a-zA-Z0-9.-]+$", min_length=10, max_length=128,
                          check=_uri_endpoint_problem)
_URI_PATH = KmsString(expect="/kms/xks/v<N>, optionally after a prefix (e.g. /kms/xks/v1)",
                      pattern=r"^(/[a-zA-Z0-9/_-]+/kms/xks/v[0-9]{1,2})$|^(/kms/xks/v[0-9]{1,2})$",
                      min_length=10, max_length=128, check=_uri_path_problem)
_VPCE_SERVICE_NAME = KmsString(
    expect="a VPC endpoint service name like com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
    pattern=r"^(com|eu)\.amazonaws\.vpce\.([a-z]+-){2,3}[0-9]+\.vpce-svc-[0-9a-z]+$",
    min_length=20, max_length=64)
_ACCESS_KEY_ID = KmsString(expect="20 to 30 characters of A-Z and 2-7", pattern=r"^[A-Z2-7]+$",
                           min_length=20, max_length=30, echo=False)
_XKS_KEY_ID = KmsString(expect="1 to 128 letters, digits, '-', '_' or '.'", pattern=r"^[a-zA-Z0-9_.-]+$",
                        min_length=1, max_length=128)
# AliasName: the model's pattern ^[a-zA-Z0-9:/_-]+$ admits ':' (it also matches alias ARNs), but
# its documentation, which KMS enforces, says "It can contain only alphanumeric characters,
# forward slashes (/), underscores (_), and dashes (-)": KMS refuses alias/team:app
_ALIAS = KmsString(expect="'alias/' followed by letters, digits, '/', '_' or '-'",
                   pattern=r"^alias/[a-zA-Z0-9/_-]+$", min_length=1, max_length=256,
                   check=_alias_problem, not_pattern=r"^alias/aws/")
_DESCRIPTION = KmsString(expect="at most 8192 characters", max_length=8192)
_TAG_KEY = KmsString(expect="1 to 128 characters, not starting with 'aws:'", min_length=1, max_length=128,
                     check=_tag_key_problem, not_pattern=r"^[aA][wW][sS]:")
_TAG_VALUE = KmsString(expect="at most 256 characters", max_length=256)
_CLUSTER_ID = KmsString(expect="a CloudHSM cluster id like cluster-jxhlf7644ne",
                        pattern=r"^cluster-[2-7a-zA-Z]{11,16}$", min_length=19, max_length=24)
_TRUST_ANCHOR = KmsString(expect="a PEM certificate (-----BEGIN CERTIFICATE----- ...) of at most 5000 characters",
                          min_length=1, max_length=5000,
                          check=lambda v: None if "-----BEGIN CERTIFICATE-----" in v else
                          "must be the PEM text of the cluster's trust anchor certificate "
                          "(-----BEGIN CERTIFICATE----- ...), or {fromFile: customerCA.crt}",
                          echo=False)
_ENV_NAME = KmsString(expect="an environment variable name (letters, digits and '_', not starting with a digit)",
                      pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", min_length=1, max_length=256, echo=False)
_FILE_PATH = KmsString(expect="a file path", min_length=1, max_length=4096, echo=False,
                       check=lambda v: "must not contain NUL characters" if "\0" in v else None)

# What a resolved secret must look like (checked when it is resolved; see secrets.py).
XKS_SECRET_ACCESS_KEY = KmsString(expect="43 to 64 characters of A-Z, a-z, 0-9, '/', '+' and '='",
                                  pattern=r"^[a-zA-Z0-9/+=]+$", min_length=43, max_length=64, echo=False)
KEY_STORE_PASSWORD = KmsString(expect="7 to 32 characters", min_length=7, max_length=32, echo=False)
XKS_ACCESS_KEY_ID = _ACCESS_KEY_ID
TRUST_ANCHOR_CERTIFICATE = _TRUST_ANCHOR


def _pending_window(value: int) -> int:
    if not MIN_PENDING_WINDOW_DAYS <= value <= MAX_PENDING_WINDOW_DAYS:
        raise PydanticCustomError(
            "kms_range",
            f"must be between {MIN_PENDING_WINDOW_DAYS} and {MAX_PENDING_WINDOW_DAYS} days "
            f"(KMS's pending deletion window), got {value}")
    return value


class _WindowDays:
    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_pending_window, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out.update(minimum=MIN_PENDING_WINDOW_DAYS, maximum=MAX_PENDING_WINDOW_DAYS)
        return out


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

    fromEnv: Optional[Annotated[str, _ENV_NAME]] = Field(
        default=None, description="Name of the environment variable that holds the value.")
    fromFile: Optional[Annotated[str, _FILE_PATH]] = Field(
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


AccessKeyIdValue = _literal_or_ref_type(_ACCESS_KEY_ID)
TrustAnchorValue = _literal_or_ref_type(_TRUST_ANCHOR)

# --------------------------------------------------------------------------------------------
# The models

_CONFIG = ConfigDict(strict=True, extra="forbid", frozen=True, hide_input_in_errors=True)


class Metadata(BaseModel):
    """Identifies the key store."""

    model_config = _CONFIG

    name: Annotated[str, _NAME] = Field(
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
    uriEndpoint: Optional[Annotated[str, _URI_ENDPOINT]] = Field(
        default=None,
        description="https:// plus the proxy's host name (letters, digits, dots, hyphens), no port and no "
                    "path (XksProxyUriEndpoint, 10-128 characters). For VPC_ENDPOINT_SERVICE it is the "
                    "endpoint service's private DNS name.")
    uriPath: Optional[Annotated[str, _URI_PATH]] = Field(
        default=None,
        description="The proxy API's path, ending in /kms/xks/v<N>, optionally after a prefix "
                    "(XksProxyUriPath, 10-128 characters), e.g. /kms/xks/v1 or /example/kms/xks/v1.")
    vpcEndpointServiceName: Optional[Annotated[str, _VPCE_SERVICE_NAME]] = Field(
        default=None,
        description="The Amazon VPC endpoint service's name (XksProxyVpcEndpointServiceName). Required for "
                    "VPC_ENDPOINT_SERVICE, not allowed for PUBLIC_ENDPOINT.")
    vpcEndpointServiceOwner: Optional[Annotated[str, _ACCOUNT]] = Field(
        default=None,
        description="The 12-digit account that owns the VPC endpoint service, when it is not the store's "
                    "account (XksProxyVpcEndpointServiceOwner). VPC_ENDPOINT_SERVICE only.")
    credential: Optional[XksCredential] = Field(
        default=None, description="The proxy authentication credential.")


class CloudHsmSpec(BaseModel):
    """CloudHSM key store settings. Required for type AWS_CLOUDHSM."""

    model_config = _CONFIG

    clusterId: Optional[Annotated[str, _CLUSTER_ID]] = Field(
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

    alias: Optional[Annotated[str, _ALIAS]] = Field(
        default=None,
        description="The key's alias, e.g. alias/payments-primary: 'alias/' then letters, digits, '/', "
                    "'_' or '-' (no ':'), not under alias/aws/. Required for keys of a CloudHSM store, where it "
                    "identifies the key; optional for XKS keys. Unique per account and region.")
    xksKeyId: Optional[Annotated[str, _XKS_KEY_ID]] = Field(
        default=None,
        description="The external key's id in the XKS proxy (XksKeyId): 1-128 letters, digits, '-', '_', '.'. "
                    "Required for keys of an XKS store, where it identifies the key; not allowed for CloudHSM "
                    "keys. One KMS key per external key in a store.")
    description: Annotated[str, _DESCRIPTION] = Field(
        default="", description="The key's description, at most 8192 characters.")
    enabled: bool = Field(default=True, description="Whether the key is enabled (usable) or disabled.")
    tags: dict[Annotated[str, _TAG_KEY], Annotated[str, _TAG_VALUE]] = Field(
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

    pendingWindowDays: Annotated[int, _WindowDays()] = Field(
        default=DEFAULT_PENDING_WINDOW_DAYS,
        description="Waiting period, 7-30 days (KMS default 30), for keys of this store that are scheduled "
                    "for deletion (also when the whole store is decommissioned). Deletion is irreversible "
                    "once the window ends.")


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

    region: Optional[Annotated[str, _REGION]] = Field(
        default=None,
        description="AWS region of the store. Optional: otherwise --region, AWS_REGION or AWS_DEFAULT_REGION.")
    account: Optional[Annotated[str, _ACCOUNT]] = Field(
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
