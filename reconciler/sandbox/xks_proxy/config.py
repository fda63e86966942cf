"""The proxy's configuration file (YAML), validated with pydantic.

::

    uriPath: /example/uri/path/prefix/kms/xks/v1
    credentials:                        # one or more: two at once during a rotation
      - accessKeyId: ABCDEFGHIJKLMNOPQRST2345
        secretAccessKey: {fromEnv: XKS_PROXY_SECRET}   # or a literal
    keys:
      - id: payments-key-0001           # usage [ENCRYPT, DECRYPT], status ENABLED, spec AES_256
      - {id: encrypt-only, usage: [ENCRYPT]}
      - {id: switched-off, status: DISABLED}
      - {id: not-aes, spec: RSA_2048}
    ekm:                                # optional: the external key manager fleet health reports
      vendor: Sandbox EKM vendor
      fleet: [{id: ekm-1, model: Sandbox EKM 1.0, healthStatus: ACTIVE}]
    latencyMs: {encrypt: 40}            # optional: added to each call of that kind
    keyMaterialSeed: {fromEnv: XKS_PROXY_KEY_SEED}   # optional: key material survives restarts

:func:`load_config` reports every problem at once as ``FILE:LINE:COL: message`` (a
:class:`ConfigError`). Secret values (``secretAccessKey``, ``keyMaterialSeed``) are held as
pydantic ``SecretStr`` and appear in no message, repr or exception.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator

from reconciler.sandbox.xks_proxy.yaml_positions import ConfigError, Document, Problem, load_yaml

__all__ = ["ConfigError", "Credential", "EkmMember", "Ekm", "Key", "Latency", "ProxyConfig", "load_config",
           "parse_config"]

MAX_CONFIG_BYTES = 256 * 1024

HealthStatus = Literal["ACTIVE", "DEGRADED", "UNAVAILABLE"]
KeyUsage = Literal["ENCRYPT", "DECRYPT", "SIGN", "VERIFY", "WRAP", "UNWRAP", "DERIVE"]
KeySpec = Literal["AES_256", "AES_128", "HMAC_256", "RSA_2048", "RSA_3072", "RSA_4096",
                  "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"]
KeyStatus = Literal["ENABLED", "DISABLED"]

# KMS's rules for XksProxyUriPath, XksKeyId and XksProxyAuthenticationCredential
URI_PATH = re.compile(r"(/[A-Za-z0-9_-]+)*/kms/xks/v[0-9]+")
KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
ACCESS_KEY_ID = re.compile(r"[A-Z2-7]{20,30}")
SECRET_ACCESS_KEY = re.compile(r"[A-Za-z0-9+/=]{43,64}")


class _Model(BaseModel):
    # hide_input_in_errors: a ValidationError's text never shows a value (a secret among them)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, hide_input_in_errors=True)


def _secret(value: Any, info: ValidationInfo, what: str) -> Any:
    """A literal string or ``{fromEnv: VAR}`` (resolved from the context's ``environ``)."""
    if isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        return SecretStr(value)
    if isinstance(value, Mapping):
        if set(value) != {"fromEnv"} or not isinstance(value["fromEnv"], str) or not value["fromEnv"]:
            raise ValueError(f"{what} is a string or {{fromEnv: VARIABLE}}; got a mapping with "
                             f"{', '.join(sorted(map(str, value))) or 'no keys'}")
        environ = (info.context or {}).get("environ", os.environ)
        name = value["fromEnv"]
        if name not in environ:
            raise ValueError(f"environment variable {name} is not set")
        return SecretStr(environ[name])
    raise ValueError(f"{what} is a string or {{fromEnv: VARIABLE}}")


class Credential(_Model):
    """One SigV4 credential the proxy accepts: KMS's XksProxyAuthenticationCredential."""

    access_key_id: str = Field(alias="accessKeyId")
    secret_access_key: SecretStr = Field(alias="secretAccessKey")

    @field_validator("access_key_id")
    @classmethod
    def _check_access_key_id(cls, value: str) -> str:
        if not ACCESS_KEY_ID.fullmatch(value):
            raise ValueError(f"accessKeyId must be 20-30 characters of A-Z and 2-7; got {len(value)} characters")
        return value

    @field_validator("secret_access_key", mode="before")
    @classmethod
    def _resolve_secret(cls, value: Any, info: ValidationInfo) -> Any:
        secret = _secret(value, info, "secretAccessKey")
        text = secret.get_secret_value()
        if not SECRET_ACCESS_KEY.fullmatch(text):
            raise ValueError(f"secretAccessKey must be 43-64 characters of A-Z, a-z, 0-9, +, / and =; "
                             f"the value given has {len(text)} characters")
        return secret


class Key(_Model):
    """An external key: its id in request paths, what it may do, whether it is enabled, its type."""

    id: str
    usage: tuple[KeyUsage, ...] = ("ENCRYPT", "DECRYPT")
    status: KeyStatus = "ENABLED"
    spec: KeySpec = "AES_256"

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not KEY_ID.fullmatch(value):
            raise ValueError("a key id is 1-128 letters, digits, '.', '-' or '_'")
        return value

    @field_validator("usage")
    @classmethod
    def _check_usage(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({u for u in value if value.count(u) > 1})
        if repeated:
            raise ValueError(f"usage lists {', '.join(repeated)} more than once")
        return value


class EkmMember(_Model):
    id: str = Field(min_length=1, max_length=128)
    model: str = Field(default="Sandbox EKM 1.0", min_length=1, max_length=128)
    health_status: HealthStatus = Field(default="ACTIVE", alias="healthStatus")


class Ekm(_Model):
    """The external key manager fleet that health reports (1-10 members)."""

    vendor: str = Field(default="Reconciler sandbox", min_length=1, max_length=128)
    fleet: tuple[EkmMember, ...] = Field(default=(EkmMember(id="ekm-1"),), min_length=1, max_length=10)

    @field_validator("fleet")
    @classmethod
    def _unique_ids(cls, value: tuple[EkmMember, ...]) -> tuple[EkmMember, ...]:
        _refuse_repeats([m.id for m in value], "fleet member id")
        return value


class Latency(_Model):
    """Milliseconds added to every call of a kind, before it is answered."""

    health: int = Field(default=0, ge=0, le=60_000)
    metadata: int = Field(default=0, ge=0, le=60_000)
    encrypt: int = Field(default=0, ge=0, le=60_000)
    decrypt: int = Field(default=0, ge=0, le=60_000)


class ProxyConfig(_Model):
    uri_path: str = Field(alias="uriPath")
    credentials: tuple[Credential, ...] = Field(min_length=1)
    keys: tuple[Key, ...] = ()
    ekm: Ekm = Ekm()
    latency_ms: Latency = Field(default=Latency(), alias="latencyMs")
    key_material_seed: Optional[SecretStr] = Field(default=None, alias="keyMaterialSeed")

    @field_validator("uri_path")
    @classmethod
    def _check_uri_path(cls, value: str) -> str:
        if len(value) > 128 or not URI_PATH.fullmatch(value):
            raise ValueError("uriPath is at most 128 characters of letters, digits, '/', '-' and '_', "
                             "starting with '/' and ending in /kms/xks/v1 (e.g. /example/prefix/kms/xks/v1)")
        return value

    @field_validator("credentials")
    @classmethod
    def _unique_access_key_ids(cls, value: tuple[Credential, ...]) -> tuple[Credential, ...]:
        _refuse_repeats([c.access_key_id for c in value], "accessKeyId")
        return value

    @field_validator("keys")
    @classmethod
    def _unique_key_ids(cls, value: tuple[Key, ...]) -> tuple[Key, ...]:
        _refuse_repeats([k.id for k in value], "key id")
        return value

    @field_validator("key_material_seed", mode="before")
    @classmethod
    def _resolve_seed(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        seed = _secret(value, info, "keyMaterialSeed")
        if len(seed.get_secret_value()) < 16:
            raise ValueError("keyMaterialSeed must be at least 16 characters")
        return seed

    def key(self, key_id: str) -> Key | None:
        return next((k for k in self.keys if k.id == key_id), None)


def _refuse_repeats(values: list[str], what: str) -> None:
    for i, value in enumerate(values):
        if value in values[:i]:
            raise ValueError(f"{what} {value!r} is given twice (entries {values.index(value) + 1} and {i + 1})")


# --------------------------------------------------------------------------------------------
# Loading


def _aliases(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(path: tuple[Any, ...]) -> type[BaseModel] | None:
    model: Any = ProxyConfig
    for part in path:
        if isinstance(part, int):
            continue
        fields = {f.alias or n: f for n, f in model.model_fields.items()}
        if part not in fields:
            return None
        annotation = fields[part].annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    return model


def _message(error: dict[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    where = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = f"; allowed: {', '.join(_aliases(model))}" if model else ""
        return f"unknown field {loc[-1]!r}{allowed}"
    if kind == "missing":
        return f"missing required field {loc[-1]!r}"
    ctx = error.get("ctx") or {}
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        got = error.get("input")
        hint = ([c for c in choices if c.lower() == str(got).lower()]
                or difflib.get_close_matches(str(got), choices, n=1, cutoff=0.6))
        text = f"must be one of {', '.join(choices)}; got {got!r}" + (f" (did you mean {hint[0]}?)" if hint else "")
        return f"{where}: {text}"
    if kind == "too_short":
        count = ctx.get("min_length")
        return f"{where}: needs at least {count} {'entry' if count == 1 else 'entries'}"
    if kind == "too_long":
        return f"{where}: has at most {ctx.get('max_length')} entries"
    text = str(error.get("msg", kind))
    text = text[len("Value error, "):] if text.startswith("Value error, ") else text
    return f"{where}: {text}" if where else text


def _problems(doc: Document, exc: ValidationError) -> list[Problem]:
    out = []
    errors = exc.errors(include_url=False)  # inputs are shown for literal errors only (no secret is a literal)
    failed = [tuple(e["loc"]) for e in errors]
    for error in errors:
        path = tuple(error["loc"])
        if error["type"] == "too_short" and any(len(f) > len(path) and f[:len(path)] == path for f in failed):
            continue  # entries failed, so pydantic also counts too few: the entries' errors say it all
        out.append(doc.problem(path, _message(error), key=error["type"] == "extra_forbidden"))
    return sorted(set(out), key=lambda p: (p.line or 0, p.col or 0, p.message))


def parse_config(text: str, file: str = "<config>", environ: Mapping[str, str] | None = None) -> ProxyConfig:
    """Validate configuration ``text``; ``environ`` (default: os.environ) resolves ``fromEnv``."""
    doc = load_yaml(text, file)
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.problem((), "the configuration is a mapping with uriPath, credentials and keys")])
    try:
        return ProxyConfig.model_validate(doc.data, context={"environ": os.environ if environ is None else environ})
    except ValidationError as exc:
        raise ConfigError(_problems(doc, exc)) from None


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> ProxyConfig:
    """Read and validate the configuration file at ``path``; raise :class:`ConfigError`."""
    file = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([Problem(file, None, None, f"cannot read the file: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([Problem(file, None, None, f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(file, None, None, f"the file is not UTF-8 (byte {exc.start})")]) from None
    return parse_config(text, file, environ)
