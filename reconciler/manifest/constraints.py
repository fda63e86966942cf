"""Constraints of the manifest's fields, taken from the KMS API model that ships with botocore:
one definition (:class:`KmsString`) gives the validation, the human message and the JSON Schema.

Where the model's pattern and its documentation disagree, the documentation, which KMS enforces,
wins (an alias may not hold ':'); regions are checked against botocore's partition data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from reconciler.aws.regions import region_problem

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
# fields whose value is never shown in a message (a string where the credential mapping belongs is
# most likely the secret itself)
SENSITIVE_FIELDS = frozenset({"secretAccessKey", "keyStorePassword", "accessKeyId", "credential"})


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


STORE_NAME = KmsString(expect="1 to 256 characters", min_length=1, max_length=256)
REGION = KmsString(expect="an AWS region name such as us-east-1", check=region_problem,
                    pattern=r"^[a-z]{2,}(-[a-z]+)+-[0-9]{1,2}$")
ACCOUNT = KmsString(expect="a 12-digit AWS account id (quote it in YAML)", pattern=r"^[0-9]{12}$")
URI_ENDPOINT = KmsString(expect="https:// followed by a host name of letters, digits, dots and hyphens",
                          pattern=r"^https://[a-zA-Z0-9.-]+$", min_length=10, max_length=128,
                          check=_uri_endpoint_problem)
URI_PATH = KmsString(expect="/kms/xks/v<N>, optionally after a prefix (e.g. /kms/xks/v1)",
                      pattern=r"^(/[a-zA-Z0-9/_-]+/kms/xks/v[0-9]{1,2})$|^(/kms/xks/v[0-9]{1,2})$",
                      min_length=10, max_length=128, check=_uri_path_problem)
VPCE_SERVICE_NAME = KmsString(
    expect="a VPC endpoint service name like com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
    pattern=r"^(com|eu)\.amazonaws\.vpce\.([a-z]+-){2,3}[0-9]+\.vpce-svc-[0-9a-z]+$",
    min_length=20, max_length=64)
ACCESS_KEY_ID = KmsString(expect="20 to 30 characters of A-Z and 2-7", pattern=r"^[A-Z2-7]+$",
                           min_length=20, max_length=30, echo=False)
XKS_KEY_ID = KmsString(expect="1 to 128 letters, digits, '-', '_' or '.'", pattern=r"^[a-zA-Z0-9_.-]+$",
                        min_length=1, max_length=128)
# AliasName: the model's pattern ^[a-zA-Z0-9:/_-]+$ admits ':' (it also matches alias ARNs), but
# its documentation, which KMS enforces, says "It can contain only alphanumeric characters,
# forward slashes (/), underscores (_), and dashes (-)": KMS refuses alias/team:app
ALIAS = KmsString(expect="'alias/' followed by letters, digits, '/', '_' or '-'",
                   pattern=r"^alias/[a-zA-Z0-9/_-]+$", min_length=1, max_length=256,
                   check=_alias_problem, not_pattern=r"^alias/aws/")
DESCRIPTION = KmsString(expect="at most 8192 characters", max_length=8192)
TAG_KEY = KmsString(expect="1 to 128 characters, not starting with 'aws:'", min_length=1, max_length=128,
                     check=_tag_key_problem, not_pattern=r"^[aA][wW][sS]:")
TAG_VALUE = KmsString(expect="at most 256 characters", max_length=256)
CLUSTER_ID = KmsString(expect="a CloudHSM cluster id like cluster-jxhlf7644ne",
                        pattern=r"^cluster-[2-7a-zA-Z]{11,16}$", min_length=19, max_length=24)
TRUST_ANCHOR = KmsString(expect="a PEM certificate (-----BEGIN CERTIFICATE----- ...) of at most 5000 characters",
                          min_length=1, max_length=5000,
                          check=lambda v: None if "-----BEGIN CERTIFICATE-----" in v else
                          "must be the PEM text of the cluster's trust anchor certificate "
                          "(-----BEGIN CERTIFICATE----- ...), or {fromFile: customerCA.crt}",
                          echo=False)
ENV_NAME = KmsString(expect="an environment variable name (letters, digits and '_', not starting with a digit)",
                      pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", min_length=1, max_length=256, echo=False)
FILE_PATH = KmsString(expect="a file path", min_length=1, max_length=4096, echo=False,
                       check=lambda v: "must not contain NUL characters" if "\0" in v else None)

# What a resolved secret must look like (checked when it is resolved; see secrets.py).
XKS_SECRET_ACCESS_KEY = KmsString(expect="43 to 64 characters of A-Z, a-z, 0-9, '/', '+' and '='",
                                  pattern=r"^[a-zA-Z0-9/+=]+$", min_length=43, max_length=64, echo=False)
KEY_STORE_PASSWORD = KmsString(expect="7 to 32 characters", min_length=7, max_length=32, echo=False)
XKS_ACCESS_KEY_ID = ACCESS_KEY_ID
TRUST_ANCHOR_CERTIFICATE = TRUST_ANCHOR


def _pending_window(value: int) -> int:
    if not MIN_PENDING_WINDOW_DAYS <= value <= MAX_PENDING_WINDOW_DAYS:
        raise PydanticCustomError(
            "kms_range",
            f"must be between {MIN_PENDING_WINDOW_DAYS} and {MAX_PENDING_WINDOW_DAYS} days "
            f"(KMS's pending deletion window), got {value}")
    return value


class WindowDays:
    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_pending_window, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        out.update(minimum=MIN_PENDING_WINDOW_DAYS, maximum=MAX_PENDING_WINDOW_DAYS)
        return out
