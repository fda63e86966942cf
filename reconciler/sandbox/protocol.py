"""The AWS JSON 1.1 protocol of the emulator: one place for every KMS operation.

A KMS request is an HTTP POST with ``X-Amz-Target: TrentService.<Operation>``, a SigV4
``Authorization`` header and a JSON object as its body; the answer is a JSON object with
``Content-Type: application/x-amz-json-1.1``, or an error ``{"__type": "<Name>", "message": ...}``
with the error's HTTP status. This module replaces moto's ``KmsResponse._dispatch`` (see
:mod:`reconciler.sandbox.install`), so moto's own operations and the emulator's go through the
same steps, in this order:

1. :func:`check_signature`: no ``Authorization`` header: 403 MissingAuthenticationTokenException;
   one that is not a SigV4 header: IncompleteSignatureException. (The signature itself is not
   verified: the emulator has no secrets to verify it with.)
2. :func:`operation_of`: a target that is not ``TrentService.<an operation of the model>``:
   UnknownOperationException.
3. the request bracket (:func:`reconciler.sandbox.responses.sandbox_call_action`): call counts,
   latency, quotas and injected faults, then :func:`read_input`: a body that is not UTF-8 JSON
   holding an object: SerializationException; then the input shape of the operation
   (:mod:`reconciler.sandbox.apimodel`): SerializationException or ValidationException, before any
   handler runs.
4. :func:`execute`: the emulator's handler for the operation (:mod:`reconciler.sandbox.handlers`)
   or moto's, its result written with the operation's output shape (no nulls, no member the model
   does not define); an error raised by either rendered as the protocol's JSON error. Anything
   else a handler raises is a bug: answered as KMSInternalException (500), which the property
   tests look for.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Callable

from botocore import xform_name
from moto.core.exceptions import JsonRESTError

from reconciler.sandbox import apimodel
from reconciler.sandbox import exceptions as exc

CONTENT_TYPE = "application/x-amz-json-1.1"

log = logging.getLogger("reconciler.sandbox")

Handler = Callable[[Any, dict], Any]

_SIGV4 = re.compile(r"^AWS4-(?:HMAC-SHA256|ECDSA-P256-SHA256)\s+(.*)$", re.DOTALL)
_REQUIRED_AUTH_PARTS = ("Credential", "Signature", "SignedHeaders")


# ---------------------------------------------------------------------------------------------
# Before the bracket: who is asking, and for what
# ---------------------------------------------------------------------------------------------


def check_signature(headers: Any, query: Any = None) -> None:
    """The request must be signed (SigV4). Names what is missing, never echoes the header."""
    authorization = headers.get("Authorization")
    if not authorization:
        if query is not None and query.get("X-Amz-Signature") and query.get("X-Amz-Credential"):
            return  # a presigned request
        raise exc.MissingAuthenticationTokenException("Missing Authentication Token")
    match = _SIGV4.match(authorization.strip())
    parts: dict[str, str] = {}
    if match:
        for item in match.group(1).split(","):
            name, equals, value = item.strip().partition("=")
            if equals and value:
                parts[name] = value
    problems = [f"Authorization header requires '{name}' parameter." for name in _REQUIRED_AUTH_PARTS if name not in parts]
    credential = parts.get("Credential", "")
    if "Credential" in parts and len(credential.split("/")) != 5:
        problems.append("Authorization header 'Credential' must be KEY/DATE/REGION/SERVICE/aws4_request.")
    if not (headers.get("X-Amz-Date") or headers.get("Date")):
        problems.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if problems:
        raise exc.IncompleteSignatureException(" ".join(problems))


def operation_of(headers: Any) -> str:
    """The KMS operation named by ``X-Amz-Target`` (UnknownOperationException otherwise)."""
    target = headers.get("X-Amz-Target") or ""
    prefix, dot, name = target.partition(".")
    if prefix != apimodel.TARGET_PREFIX or not dot or name not in apimodel.operation_names():
        raise exc.UnknownOperationException()
    return name


def dispatch(self: Any, request: Any, full_url: str | None = None, headers: Any = None) -> Any:
    """Replaces ``KmsResponse._dispatch``: steps 1-2, moto's request setup, then the bracket."""
    try:
        check_signature(request.headers, getattr(request, "args", None))
        operation = operation_of(request.headers)
    except exc.KmsError as error:
        return render_error(None, error)
    try:
        self.setup_class(request, full_url, headers)
    except UnicodeDecodeError:
        return render_error(None, exc.SerializationException("The request body is not UTF-8 text."))
    self._sandbox_operation = operation
    return self.call_action()


# ---------------------------------------------------------------------------------------------
# Inside the bracket
# ---------------------------------------------------------------------------------------------


def read_input(self: Any, operation: str) -> dict[str, Any]:
    """The request body as the operation's input: parsed, checked against the model, nulls
    dropped (the protocol reads a null member as an absent one). Cached on the request."""
    cached = self.__dict__.get("_sandbox_params")
    if cached is not None:
        return cached
    body = getattr(self, "raw_body", None)
    if body is None:
        body = self.body
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise exc.SerializationException("The request body is not UTF-8 text.") from None
    if not body or not body.strip():
        params: Any = {}
    else:
        try:
            params = json.loads(body)
        except (ValueError, RecursionError):
            raise exc.SerializationException("The request body is not valid JSON.") from None
        if not isinstance(params, dict):
            raise exc.SerializationException("The request body must be a JSON object.")
    apimodel.validate_input(operation, params)
    params = {name: value for name, value in params.items() if value is not None}
    self._sandbox_params = params
    return params


def moto_handler(operation: str) -> Callable[[Any], Any] | None:
    from moto.kms.responses import KmsResponse

    return getattr(KmsResponse, xform_name(operation), None)


def execute(self: Any, operation: str, params: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    """Run the operation; its result or its error as the protocol's response."""
    from reconciler.sandbox.handlers import HANDLERS

    try:
        handler = HANDLERS.get(operation)
        if handler is not None:
            result = handler(self, params)
        else:
            method = moto_handler(operation)
            if method is None:  # every operation of the model has a handler (tests check it)
                raise exc.UnsupportedOperationException(f"The emulator does not implement {operation}.")
            text = method(self)
            result = json.loads(text) if text else None
        body = json.dumps(apimodel.output_writer(operation)(result or {}))
    except JsonRESTError as error:
        return render_error(self, error)
    except Exception:
        log.debug("KMS %s failed inside the emulator", operation, exc_info=True)
        return render_error(self, exc.KMSInternalException())
    return 200, _headers(self, 200), body


# ---------------------------------------------------------------------------------------------
# Responses
# ---------------------------------------------------------------------------------------------


def _headers(self: Any, status: int) -> dict[str, str]:
    headers: dict[str, Any] = dict(getattr(self, "response_headers", None) or {})
    headers["Content-Type"] = CONTENT_TYPE
    headers["status"] = str(status)
    if self is not None:
        headers, _ = self._enrich_response(headers, "")
    return headers


def render_error(self: Any, error: Any) -> tuple[int, dict[str, str], str]:
    """An error (the emulator's or moto's ``JsonRESTError``) as the JSON protocol sends it."""
    status = int(getattr(error, "code", 400) or 400)
    name = str(getattr(error, "error_type", type(error).__name__)).split("#")[-1]
    message = getattr(error, "message", "") or ""
    body = json.dumps({"__type": name, "message": message})
    headers = _headers(self, status)
    if self is None:
        headers = {"Content-Type": CONTENT_TYPE, "status": str(status)}
    return status, headers, body
