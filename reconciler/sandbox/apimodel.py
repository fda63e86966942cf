"""The KMS API model, compiled once per shape: input checks, output shaping, error lists.

The model is botocore's KMS service model (``botocore.session.get_session().get_service_model
("kms")``), which carries the KMS API Reference text. Everything here is derived from it and
compiled on first use, then cached, so a request pays only for walking its own members.

Input, as the JSON 1.1 protocol reads it (docs/emulator.md, "The wire protocol"):

- a value of the wrong JSON type (a string where the model has an integer, an object where it has
  a list, a blob that is not base64...) cannot be deserialized: ``SerializationException``, the
  first one found;
- every constraint of the model that the value breaks (required members, lengths, patterns, enum
  values, ranges) is collected and answered at once: ``ValidationException`` with KMS's message
  form, ``"2 validation errors detected: Value 'x' at 'keyId' failed to satisfy constraint: Member
  must have length less than or equal to 2048; ..."``. A sensitive value (a password, a secret,
  plaintext) is never repeated: ``"Value at 'keyStorePassword' failed to satisfy ..."``.

Output: :func:`output_writer` keeps the members of the operation's output shape and drops every
null (the JSON protocol omits a member that has no value) and every member the model does not
define.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any, Callable

from reconciler.sandbox import exceptions as exc

TARGET_PREFIX = "TrentService"

# Errors any operation of an AWS JSON protocol service may answer besides those its model lists
# (the "Common Errors" of the AWS API references; ValidationException is listed by none of KMS's
# operations, yet every one answers it for a constraint the input breaks).
COMMON_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "IncompleteSignatureException",
        "InternalFailure",
        "InvalidSignatureException",
        "MissingAuthenticationTokenException",
        "RequestExpired",
        "SerializationException",
        "ServiceUnavailable",
        "ThrottlingException",
        "UnknownOperationException",
        "UnrecognizedClientException",
        "ValidationException",
    }
)

# Members the API text requires although the model does not mark them required.
# GenerateRandom NumberOfBytes: "The length of the random byte string. This parameter is
# required." (and the operation: "There is no default value for string length").
DOCUMENTED_REQUIRED: dict[str, tuple[str, ...]] = {"GenerateRandom": ("NumberOfBytes",)}

# Members where the API text allows an empty string despite a min length: UpdateCustomKeyStore
# XksProxyConnectivity: "specify a null or empty string for the XksProxyVpcEndpointServiceName
# value".
EMPTY_ALLOWED = frozenset({("UpdateCustomKeyStore", "XksProxyVpcEndpointServiceName")})

_INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@functools.lru_cache(maxsize=1)
def service_model() -> Any:
    # moto's session has usually loaded the model already (to list KMS's regions)
    from moto.core.base_backend import AccountSpecificBackend

    return AccountSpecificBackend.get_session()._session.get_service_model("kms")


@functools.lru_cache(maxsize=1)
def operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


@functools.lru_cache(maxsize=None)
def operation_model(operation: str) -> Any:
    return service_model().operation_model(operation)


@functools.lru_cache(maxsize=None)
def error_names(operation: str) -> frozenset[str]:
    """The errors the model lists for ``operation``."""
    return frozenset(shape.name for shape in operation_model(operation).error_shapes)


def error_allowed(operation: str, code: str) -> bool:
    """True when ``code`` is in the operation's error list or is a common error."""
    return code in COMMON_ERRORS or code in error_names(operation)


def lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------

Checker = Callable[[Any, str, list], None]


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _not_deserializable(value: Any, path: str, expected: str) -> exc.SerializationException:
    # names the place and the JSON types only: never the value (it may be a secret)
    where = f" at '{path}'" if path else ""
    return exc.SerializationException(f"Unexpected {_kind_of(value)}{where}: expected {expected}.")


def _value_text(sensitive: bool, value: Any, path: str) -> str:
    return f"Value at '{path}'" if sensitive else f"Value '{value}' at '{path}'"


def _join(path: str, name: str) -> str:
    return f"{path}.{lower_camel(name)}" if path else lower_camel(name)


@functools.lru_cache(maxsize=None)
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        # the model's patterns are Java regular expressions: \w, \d and \s are ASCII there
        return re.compile(text, re.ASCII)
    except re.error:
        return None


_compiled: dict[tuple[str, bool, tuple[str, ...], frozenset[str]], Checker] = {}


def _compile(
    shape: Any,
    *,
    allow_empty: bool = False,
    extra_required: tuple[str, ...] = (),
    empty_members: frozenset[str] = frozenset(),
) -> Checker:
    key = (shape.name, allow_empty, extra_required, empty_members)
    checker = _compiled.get(key)
    if checker is None:
        checker = _build(shape, allow_empty, extra_required, empty_members)
        _compiled[key] = checker
    return checker


def _build(shape: Any, allow_empty: bool, extra_required: tuple[str, ...], empty_members: frozenset[str]) -> Checker:
    kind = shape.type_name
    meta = shape.metadata
    low, high = meta.get("min"), meta.get("max")
    sensitive = bool(meta.get("sensitive"))

    if kind == "structure":
        members = {
            name: _compile(member, allow_empty=name in empty_members) for name, member in shape.members.items()
        }
        required = tuple(dict.fromkeys(tuple(shape.required_members) + extra_required))

        def check_structure(value: Any, path: str, errors: list) -> None:
            if not isinstance(value, dict):
                raise _not_deserializable(value, path, "a structure")
            for name in required:
                if value.get(name) is None:
                    errors.append(f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null")
            for name, item in value.items():
                if item is not None:
                    check = members.get(name)
                    if check is not None:  # unknown members are ignored, as KMS does
                        check(item, _join(path, name), errors)

        return check_structure

    if kind == "string":
        enum = frozenset(shape.enum or ())
        enum_text = ", ".join(shape.enum or ())
        pattern_text = meta.get("pattern")
        pattern = _pattern(pattern_text) if pattern_text else None

        def check_string(value: Any, path: str, errors: list) -> None:
            if not isinstance(value, str):
                raise _not_deserializable(value, path, "a string")
            if allow_empty and value == "":
                return
            if enum and value not in enum:
                errors.append(
                    f"{_value_text(sensitive, value, path)} failed to satisfy constraint: Member must satisfy enum value set: [{enum_text}]"
                )
                return
            _check_length(len(value), low, high, _value_text(sensitive, value, path), errors)
            if pattern is not None and not pattern.fullmatch(value):
                errors.append(
                    f"{_value_text(sensitive, value, path)} failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern_text}"
                )

        return check_string

    if kind in ("integer", "long"):
        lowest, highest = _INT_RANGE[kind]

        def check_integer(value: Any, path: str, errors: list) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
                raise _not_deserializable(value, path, f"an {kind}" if kind == "integer" else "a long")
            text = _value_text(sensitive, value, path)
            if low is not None and value < low:
                errors.append(f"{text} failed to satisfy constraint: Member must have value greater than or equal to {low}")
            if high is not None and value > high:
                errors.append(f"{text} failed to satisfy constraint: Member must have value less than or equal to {high}")

        return check_integer

    if kind == "boolean":

        def check_boolean(value: Any, path: str, errors: list) -> None:
            if not isinstance(value, bool):
                raise _not_deserializable(value, path, "a boolean")

        return check_boolean

    if kind == "timestamp":

        def check_timestamp(value: Any, path: str, errors: list) -> None:
            # the JSON protocol sends timestamps as epoch seconds
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _not_deserializable(value, path, "a timestamp in epoch seconds")

        return check_timestamp

    if kind == "blob":

        def check_blob(value: Any, path: str, errors: list) -> None:
            if not isinstance(value, str):
                raise _not_deserializable(value, path, "a base64-encoded blob")
            try:
                size = len(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                raise exc.SerializationException(f"The value at '{path}' is not valid base64.") from None
            _check_length(size, low, high, f"Value at '{path}'", errors)

        return check_blob

    if kind == "list":
        item_shape = shape.member
        check_item = _compile(item_shape)
        quiet = sensitive or bool(item_shape.metadata.get("sensitive"))

        def check_list(value: Any, path: str, errors: list) -> None:
            if not isinstance(value, list):
                raise _not_deserializable(value, path, "a list")
            _check_length(len(value), low, high, _value_text(quiet, value, path), errors)
            for index, item in enumerate(value, start=1):
                where = f"{path}.{index}.member"
                if item is None:
                    errors.append(f"Value null at '{where}' failed to satisfy constraint: Member must not be null")
                else:
                    check_item(item, where, errors)

        return check_list

    if kind == "map":
        check_key = _compile(shape.key)
        check_value = _compile(shape.value)

        def check_map(value: Any, path: str, errors: list) -> None:
            if not isinstance(value, dict):
                raise _not_deserializable(value, path, "a map")
            _check_length(len(value), low, high, f"Value at '{path}'", errors)
            for key, item in value.items():
                check_key(key, f"{path}.key", errors)
                if item is None:
                    errors.append(f"Value null at '{path}.{key}' failed to satisfy constraint: Member must not be null")
                else:
                    check_value(item, f"{path}.{key}", errors)

        return check_map

    def check_anything(value: Any, path: str, errors: list) -> None:  # document: any JSON
        return None

    return check_anything


def _check_length(size: int, low: int | None, high: int | None, text: str, errors: list) -> None:
    if low is not None and size < low:
        errors.append(f"{text} failed to satisfy constraint: Member must have length greater than or equal to {low}")
    if high is not None and size > high:
        errors.append(f"{text} failed to satisfy constraint: Member must have length less than or equal to {high}")


@functools.lru_cache(maxsize=None)
def input_checker(operation: str) -> Checker | None:
    """The compiled check of ``operation``'s input shape (None: the operation takes no input)."""
    shape = operation_model(operation).input_shape
    if shape is None:
        return None
    return _compile(
        shape,
        extra_required=DOCUMENTED_REQUIRED.get(operation, ()),
        empty_members=frozenset(member for op, member in EMPTY_ALLOWED if op == operation),
    )


def missing_member(name: str) -> exc.ValidationException:
    """The ValidationException for a member the request must carry (in the model's form)."""
    return exc.ValidationException(
        f"1 validation error detected: Value null at '{lower_camel(name)}' failed to satisfy "
        "constraint: Member must not be null"
    )


def validate_input(operation: str, params: dict[str, Any]) -> None:
    """Check ``params`` (a JSON object) against ``operation``'s input shape: SerializationException
    for a value of the wrong type, else ValidationException listing every broken constraint."""
    if operation not in operation_names():
        return
    check = input_checker(operation)
    if check is None:
        return
    errors: list[str] = []
    check(params, "", errors)
    if errors:
        count = len(errors)
        raise exc.ValidationException(
            f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(errors)
        )


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

Writer = Callable[[Any], Any]

_writers: dict[str, Writer] = {}


def _identity(value: Any) -> Any:
    return value


def _writer(shape: Any) -> Writer:
    writer = _writers.get(shape.name)
    if writer is None:
        _writers[shape.name] = _identity  # a recursive shape refers to itself while being built
        writer = _build_writer(shape)
        _writers[shape.name] = writer
    return writer


def _build_writer(shape: Any) -> Writer:
    kind = shape.type_name
    if kind == "structure":
        members = {name: _writer(member) for name, member in shape.members.items()}

        def write_structure(value: Any) -> Any:
            return {
                name: members[name](item)
                for name, item in value.items()
                if item is not None and name in members
            }

        return write_structure
    if kind == "list":
        item_writer = _writer(shape.member)
        return lambda value: [item_writer(item) for item in value if item is not None]
    if kind == "map":
        value_writer = _writer(shape.value)
        return lambda value: {key: value_writer(item) for key, item in value.items() if item is not None}
    if kind == "timestamp":
        return _write_timestamp
    if kind == "blob":
        return _write_blob
    return _identity


def _write_timestamp(value: Any) -> Any:
    if hasattr(value, "timestamp"):
        from datetime import timezone

        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    return value


def _write_blob(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


@functools.lru_cache(maxsize=None)
def output_writer(operation: str) -> Writer:
    """Turns a handler's result into the operation's response body: the members of the output
    shape, nulls left out, datetimes as epoch seconds and bytes as base64."""
    shape = operation_model(operation).output_shape
    if shape is None:
        return lambda value: {}
    return _writer(shape)
