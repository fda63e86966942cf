"""Checks of what the emulator sends against the KMS API model (botocore's service model),
written independently of the emulator's own protocol layer.

``response_problems(operation, status, headers, body)`` lists everything wrong with one HTTP
response: the content type, the body's JSON, and

- a success (2xx): the body against the operation's output shape - no member the shape does not
  define, no null, the right JSON type for each member, enum values from the enum, required
  members present, blobs in base64;
- an error: ``{"__type": ..., "message": ...}`` whose ``__type`` is in the operation's error list
  or is one of the JSON protocol's common errors, with a 4xx status (5xx only for the errors KMS
  documents as internal).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import Any

CONTENT_TYPE = "application/x-amz-json-1.1"

# The AWS JSON protocol's common errors (any operation may answer them).
COMMON_ERRORS = {
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
SERVER_ERRORS = {"KMSInternalException", "DependencyTimeoutException", "KeyUnavailableException", "InternalFailure"}
STATUS = {"MissingAuthenticationTokenException": 403, "DryRunOperationException": 412}


@functools.lru_cache(maxsize=1)
def model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("kms")


def operations() -> list[str]:
    return sorted(model().operation_names)


def error_names(operation: str) -> set[str]:
    return {shape.name for shape in model().operation_model(operation).error_shapes}


def response_problems(operation: str, status: int, headers: Any, body: bytes | str) -> list[str]:
    problems: list[str] = []
    content_type = (headers.get("Content-Type") or headers.get("content-type") or "").split(";")[0].strip()
    if content_type != CONTENT_TYPE:
        problems.append(f"Content-Type {content_type!r}, not {CONTENT_TYPE}")
    text = body.decode() if isinstance(body, bytes) else body
    try:
        document = json.loads(text) if text else {}
    except ValueError:
        return problems + [f"body is not JSON: {text[:200]!r}"]
    if not isinstance(document, dict):
        return problems + [f"body is not a JSON object: {text[:200]!r}"]
    if 200 <= status < 300:
        shape = model().operation_model(operation).output_shape
        if shape is None:
            if document:
                problems.append(f"no output shape, yet the body has members {sorted(document)}")
        else:
            _check(shape, document, operation, problems)
        return problems
    name = document.get("__type")
    if not isinstance(name, str):
        return problems + [f"error body without __type: {document}"]
    name = name.split("#")[-1]
    if name not in COMMON_ERRORS and name not in error_names(operation):
        problems.append(f"{name} is not in {operation}'s error list nor a common error")
    message = document.get("message", document.get("Message"))
    if message is not None and not isinstance(message, str):
        problems.append(f"error message is not a string: {message!r}")
    if status >= 500 and name not in SERVER_ERRORS:
        problems.append(f"{name} answered with HTTP {status}")
    if status < 400:
        problems.append(f"error {name} with HTTP {status}")
    expected = STATUS.get(name)
    if expected is not None and status != expected:
        problems.append(f"{name} answered with HTTP {status}, not {expected}")
    return problems


def _check(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if value is None:
        problems.append(f"{path}: null")
        return
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: {type(value).__name__}, not an object")
            return
        for name in value:
            if name not in shape.members:
                problems.append(f"{path}.{name}: not a member of {shape.name}")
        for name in shape.required_members:
            if name not in value:
                problems.append(f"{path}.{name}: required by {shape.name}, missing")
        for name, member in shape.members.items():
            if name in value:
                _check(member, value[name], f"{path}.{name}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: {type(value).__name__}, not a list")
            return
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: {type(value).__name__}, not a map")
            return
        for key, item in value.items():
            _check(shape.key, key, f"{path}<key>", problems)
            _check(shape.value, item, f"{path}[{key}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: {value!r} is not a string")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not in the enum {shape.name}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: {value!r} is not an integer")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a boolean")
    elif kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: {value!r} is not a timestamp in epoch seconds")
    elif kind == "blob":
        if not isinstance(value, str):
            problems.append(f"{path}: {value!r} is not a base64 string")
        else:
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                problems.append(f"{path}: {value[:40]!r} is not base64")
