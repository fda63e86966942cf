"""CloudTrail for the emulator: KMS calls recorded as events, and LookupEvents to read them.

CloudTrail records every use of a KMS key, the failed attempts too (with their ``errorCode``),
and ``LookupEvents`` returns the management events of the last 90 days of a Region (CloudTrail
API Reference, LookupEvents: "You can look up events that occurred in a Region within the last 90
days"). moto's CloudTrail has no LookupEvents, so the emulator keeps its own event history:

* :func:`record` runs in the request bracket (:mod:`reconciler.sandbox.responses`) after every
  cryptographic operation (:data:`RECORDED`) that reached its handler, successful or not, on the
  emulator clock, with the caller's identity and, for a failure, the error code and message;
* :func:`lookup_events` answers ``LookupEvents`` (it replaces the method moto lacks on its
  ``CloudTrailResponse``, see :mod:`reconciler.sandbox.install`): one lookup attribute at most,
  StartTime/EndTime (default: the last 90 days), MaxResults 1-50 (default 50), NextToken paging,
  events newest first, each with its ``CloudTrailEvent`` JSON record.

The events are kept on the KMS backend of the account and Region (``sandbox_trail``), so the
embedded sandbox saves them with the rest of the account, and they follow its clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from moto.core.exceptions import JsonRESTError

# the cryptographic operations of the KMS API: what CloudTrail's evidence of use is made of
RECORDED = frozenset({
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "Sign", "Verify", "GenerateMac",
    "VerifyMac", "DeriveSharedSecret", "Encapsulate", "Decapsulate",
})
HISTORY_DAYS = 90
MAX_RESULTS = 50
LOOKUP_KEYS = {"EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName",
               "EventSource", "AccessKeyId"}
KMS_SOURCE = "kms.amazonaws.com"
# CloudTrail's LookupEvents quota: "2 transactions per second (TPS) per account per Region"
# (enforced when the sandbox's request quotas are on; ``quota_overrides["LookupEvents"]`` changes it)
LOOKUP_EVENTS_QUOTA = 2.0


class CloudTrailError(JsonRESTError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(name, message)


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------


def _access_key_id(headers: Any) -> str:
    authorization = (headers or {}).get("Authorization") or ""
    marker = "Credential="
    if marker not in authorization:
        return ""
    return authorization.split(marker, 1)[1].split("/", 1)[0].strip()


def _identity(account: str, access_key_id: str) -> dict[str, Any]:
    """The caller: the moto IAM user that owns the access key, else the account's root."""
    try:
        from moto.iam.models import iam_backends

        users = iam_backends[account]["global"].users
        for user in list(users.values()):
            if any(k.access_key_id == access_key_id for k in user.access_keys):
                return {"type": "IAMUser", "principalId": user.id, "arn": user.arn, "accountId": account,
                        "accessKeyId": access_key_id, "userName": user.name}
    except Exception:  # noqa: BLE001 - no IAM state: the caller is the account itself
        pass
    return {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account,
            "accessKeyId": access_key_id}


def _keys_named(backend: Any, operation: str, params: dict[str, Any]) -> list[Any]:
    names = [params.get(m) for m in ("KeyId", "SourceKeyId", "DestinationKeyId")]
    keys = []
    for name in names:
        if isinstance(name, str) and name:
            key = backend.keys.get(backend.any_id_to_key_id(name))
            if key is not None and key not in keys:
                keys.append(key)
    if operation in ("Decrypt", "ReEncrypt") and isinstance(params.get("CiphertextBlob"), str):
        try:
            from moto.kms.utils import _deserialize_ciphertext_blob

            key_id = _deserialize_ciphertext_blob(base64.b64decode(params["CiphertextBlob"])).key_id
            key = backend.keys.get(key_id)
            if key is not None and key not in keys:
                keys.append(key)
        except Exception:  # noqa: BLE001 - not a ciphertext the emulator made: no key to name
            pass
    return keys


def record(backend: Any, account: str, region: str, operation: str, params: dict[str, Any],
           headers: Any, result: tuple[int, Any, str], at: datetime) -> None:
    """Append the CloudTrail event of one cryptographic request to the backend's history."""
    status, _headers, body = result
    error_code = error_message = None
    if status >= 300:
        try:
            answer = json.loads(body)
            error_code, error_message = answer.get("__type"), answer.get("message")
        except (ValueError, AttributeError):
            error_code = "InternalFailure"
    access_key_id = _access_key_id(headers)
    identity = _identity(account, access_key_id)
    keys = _keys_named(backend, operation, params)
    event_id = str(uuid.uuid4())
    record_ = {
        "eventVersion": "1.08", "userIdentity": identity, "eventTime": _iso(at), "eventSource": KMS_SOURCE,
        "eventName": operation, "awsRegion": region, "sourceIPAddress": "127.0.0.1",
        "userAgent": "reconciler-sandbox", "requestParameters": {
            k: params[k] for k in ("KeyId", "SourceKeyId", "DestinationKeyId", "EncryptionAlgorithm") if k in params},
        "responseElements": None, "requestID": str(uuid.uuid4()), "eventID": event_id, "readOnly": True,
        "resources": [{"accountId": account, "type": "AWS::KMS::Key", "ARN": k.arn} for k in keys],
        "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if error_code:
        record_["errorCode"] = error_code
        record_["errorMessage"] = error_message or ""
    event = {
        "EventId": event_id, "EventName": operation, "ReadOnly": "true", "AccessKeyId": access_key_id,
        "EventTime": at.timestamp(), "EventSource": KMS_SOURCE,
        "Username": identity.get("userName") or ("root" if identity["type"] == "Root" else identity["principalId"]),
        "Resources": [{"ResourceType": "AWS::KMS::Key", "ResourceName": k.arn} for k in keys],
        "CloudTrailEvent": json.dumps(record_, sort_keys=True),
    }
    history = getattr(backend, "sandbox_trail", None)
    if history is None:
        history = backend.sandbox_trail = []
    history.append(event)
    horizon = (at - timedelta(days=HISTORY_DAYS)).timestamp()
    if history and history[0]["EventTime"] < horizon:  # older than CloudTrail keeps
        backend.sandbox_trail = [e for e in history if e["EventTime"] >= horizon]


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------------
# LookupEvents
# ---------------------------------------------------------------------------------------------


def _time(value: Any, member: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise CloudTrailError("InvalidTimeRangeException", f"{member} is not a valid timestamp.") from None


def _matches(event: dict[str, Any], key: str, value: str) -> bool:
    if key == "ResourceName":
        return any(r["ResourceName"] == value for r in event["Resources"])
    if key == "ResourceType":
        return any(r["ResourceType"] == value for r in event["Resources"])
    return str(event.get(key, "")) == value


def _token(query: str, end: float, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"q": query, "e": end, "o": offset}).encode()).decode()


def lookup(history: list[dict[str, Any]], params: dict[str, Any], now: datetime) -> dict[str, Any]:
    """LookupEvents over ``history`` (the pure part: validation, filters, order, paging)."""
    attributes = params.get("LookupAttributes") or []
    if not isinstance(attributes, list) or len(attributes) > 1:
        raise CloudTrailError("InvalidLookupAttributesException",
                              "LookupAttributes can contain only one item.")
    for attribute in attributes:
        if attribute.get("AttributeKey") not in LOOKUP_KEYS:
            raise CloudTrailError("InvalidLookupAttributesException",
                                  f"AttributeKey must be one of {', '.join(sorted(LOOKUP_KEYS))}.")
        value = attribute.get("AttributeValue")
        if not isinstance(value, str) or not 1 <= len(value) <= 2000:
            raise CloudTrailError("InvalidLookupAttributesException",
                                  "AttributeValue must be 1 to 2000 characters.")
    category = params.get("EventCategory")
    if category is not None and category != "insight":
        raise CloudTrailError("InvalidEventCategoryException", "EventCategory must be insight.")
    limit = params.get("MaxResults", MAX_RESULTS)
    if not isinstance(limit, int) or not 1 <= limit <= MAX_RESULTS:
        raise CloudTrailError("InvalidMaxResultsException", "MaxResults must be 1 through 50.")
    oldest = (now - timedelta(days=HISTORY_DAYS)).timestamp()
    start = _time(params.get("StartTime"), "StartTime")
    end = _time(params.get("EndTime"), "EndTime")
    if start is not None and end is not None and start > end:
        raise CloudTrailError("InvalidTimeRangeException", "StartTime is after EndTime.")
    query = hashlib.sha256(json.dumps([attributes, start, end, category], sort_keys=True,
                                      default=str).encode()).hexdigest()[:16]
    offset, upper = 0, end if end is not None else now.timestamp()
    if params.get("NextToken") is not None:
        try:
            token = json.loads(base64.urlsafe_b64decode(str(params["NextToken"]).encode()))
            offset, upper, issued_for = int(token["o"]), float(token["e"]), token["q"]
        except Exception:  # noqa: BLE001
            raise CloudTrailError("InvalidNextTokenException", "The NextToken is not valid.") from None
        if issued_for != query or offset < 0:
            raise CloudTrailError("InvalidNextTokenException",
                                  "The NextToken was issued for a request with other parameters.")
    if category == "insight":
        return {"Events": []}  # the emulator records no Insights events
    lower = max(oldest, start) if start is not None else oldest
    found = [e for e in history if lower <= e["EventTime"] <= upper
             and all(_matches(e, a["AttributeKey"], a["AttributeValue"]) for a in attributes)]
    found.sort(key=lambda e: e["EventTime"], reverse=True)  # newest first
    page = found[offset:offset + limit]
    answer: dict[str, Any] = {"Events": [dict(e) for e in page]}
    if offset + limit < len(found):
        answer["NextToken"] = _token(query, upper, offset + limit)
    return answer


def lookup_events(self: Any) -> str:
    """Replaces ``CloudTrailResponse.lookup_events`` (moto has none): the events the KMS backend
    of the request's account and Region recorded, read inside the host bracket."""
    from moto.kms.models import kms_backends

    from reconciler.sandbox.host import host
    from reconciler.sandbox.state import now

    params = json.loads(self.body or "{}") if isinstance(self.body, (str, bytes)) else {}
    with host().request("LookupEvents", False):
        backend = kms_backends[self.current_account][self.region]
        answer = lookup(list(getattr(backend, "sandbox_trail", None) or []), params, now())
    return json.dumps(answer)
