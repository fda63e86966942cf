"""Evidence of use: each key's last cryptographic use, read from CloudTrail.

CloudTrail records every call that uses a KMS key, failed attempts included (with their
``errorCode``), and ``LookupEvents`` returns a Region's management events of the last 90 days,
newest first. Looking up by ``ResourceName`` (the key's ARN) returns every event that names the
key, management calls too (DescribeKey, TagResource...): the reader pages until the first
cryptographic one. Its most recent attempt answers both questions the planner asks: how long ago
the key was last used, and whether anyone tried to use it since its quarantine began.

``LookupEvents`` is limited to two requests per second per account and Region (CloudTrail's quota,
overridable as ``LookupEvents=N`` in ``RECONCILER_KMS_QUOTAS``); the reader paces itself below it
on the connection's clock, one key at a time: a decommission of N keys reads CloudTrail for about
N / 1.9 seconds before its plan is made (the planner says so when that is long). A runner without
``cloudtrail:LookupEvents`` gets an :class:`Evidence` with ``error`` set: the planner then refuses,
it never assumes "unused".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from botocore.exceptions import BotoCoreError, ClientError

from reconciler.live.model import aware_utc

CRYPTO_OPERATIONS = frozenset({
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext", "Sign", "Verify", "GenerateMac",
    "VerifyMac", "DeriveSharedSecret", "Encapsulate", "Decapsulate",
})
LOOKBACK_DAYS = 90  # CloudTrail's event history
PAGE = 50  # LookupEvents MaxResults: 1-50
MAX_PAGES = 40  # 2000 events naming one key without a cryptographic one: the evidence is incomplete
LOOKUP_QUOTA = 2.0  # LookupEvents: 2 requests per second per account and Region


def lookup_rate() -> float:
    """The rate the reader sends LookupEvents at: below CloudTrail's quota by the limiter's headroom
    (the quota is ``LookupEvents`` in ``RECONCILER_KMS_QUOTAS`` if set there)."""
    from reconciler.aws.ratelimit import HEADROOM, env_quotas

    return env_quotas().get("LookupEvents", LOOKUP_QUOTA) * HEADROOM


@dataclass(frozen=True)
class KeyUse:
    """One cryptographic call that named the key (successful, or failed with ``error_code``)."""

    time: datetime
    operation: str
    principal: str
    error_code: str | None = None

    def describe(self) -> str:
        outcome = f", failed with {self.error_code}" if self.error_code else ""
        return f"{self.operation} by {self.principal} at {self.time.strftime('%Y-%m-%dT%H:%M:%SZ')}{outcome}"

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"), "operation": self.operation,
                "principal": self.principal, "errorCode": self.error_code}


@dataclass(frozen=True)
class Evidence:
    """What CloudTrail said about the keys looked up: KeyArn -> its last use (None: no use in
    the last 90 days). ``error``: CloudTrail could not be read (the planner refuses then)."""

    last_use: dict[str, KeyUse | None] = field(default_factory=dict)
    error: str | None = None
    since: datetime | None = None  # the start of the history looked at

    def known(self, arn: str) -> bool:
        return self.error is None and arn in self.last_use


def _principal(event: dict[str, Any]) -> tuple[str, str | None]:
    try:
        record = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        record = {}
    identity = record.get("userIdentity") or {}
    principal = identity.get("arn") or event.get("Username") or identity.get("invokedBy") or "an unknown principal"
    return principal, record.get("errorCode")


def _last_use(client: Any, arn: str, since: datetime, until: datetime, pace: Callable[[], None]) -> KeyUse | None:
    kwargs: dict[str, Any] = {"LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": arn}],
                              "StartTime": since, "EndTime": until, "MaxResults": PAGE}
    for _ in range(MAX_PAGES):
        pace()
        page = client.lookup_events(**kwargs)
        for event in page.get("Events", []):
            if event.get("EventName") in CRYPTO_OPERATIONS:
                principal, error_code = _principal(event)
                return KeyUse(time=aware_utc(event["EventTime"]), operation=event["EventName"],  # type: ignore[arg-type]
                              principal=principal, error_code=error_code)
        if not page.get("NextToken"):
            return None
        kwargs["NextToken"] = page["NextToken"]
    raise _Incomplete(f"more than {MAX_PAGES * PAGE} CloudTrail events name {arn} and none of them is a "
                      "cryptographic use; the evidence is incomplete")


class _Incomplete(Exception):
    pass


def read_evidence(client: Any, arns: Iterable[str], now: datetime, *,
                  clock: Callable[[], float], sleep: Callable[[float], None]) -> Evidence:
    """The last cryptographic use of each key, over CloudTrail's 90 days."""
    from reconciler.aws.ratelimit import TokenBucket

    arns = sorted(set(a for a in arns if a))
    since = now - timedelta(days=LOOKBACK_DAYS)
    if not arns:
        return Evidence(since=since)
    bucket = TokenBucket(lookup_rate(), burst=1.0, clock=clock, sleep=sleep)
    found: dict[str, KeyUse | None] = {}
    try:
        for arn in arns:
            found[arn] = _last_use(client, arn, since, now, bucket.acquire)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        what = ("the credentials may not call cloudtrail:LookupEvents (add it: reconciler iam-policy "
                "--mode plan)" if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation")
                else error.get("Message", "") or str(exc))
        return Evidence(error=f"CloudTrail LookupEvents failed with {code}: {what}", since=since)
    except (BotoCoreError, _Incomplete) as exc:
        return Evidence(error=f"CloudTrail could not be read: {exc}", since=since)
    return Evidence(last_use=found, since=since)
