"""Retries and backoff per KMS operation, for the executor's calls.

The executor's client has botocore's retries switched off (``client_config(retries=False)``):
every call goes through :class:`Caller`, which

* takes the operation's token from the :class:`~reconciler.aws.ratelimit.RateLimiter` before each
  attempt;
* on a throttle (ThrottlingException), tells the limiter, which lowers that operation's rate for a
  while (and only that operation's), and tries again after a jittered exponential backoff counted
  in that operation's own request interval (1 / its rate), so the backoff means the same at 5 and
  at 2000 requests per second; a throttled request had no effect, so this is safe for every call,
  the creates included;
* on an error that may or may not have had an effect (HTTP 5xx such as KMSInternalException, a
  timeout, a dropped connection), tries again after a jittered backoff, as botocore did, unless the
  caller says ``retry_errors=False``: the creates, which are not idempotent in KMS, look for what a
  lost response may have created before they retry (the executor's ``create_with_lookup``);
* on success, tells the limiter, which raises the operation's rate back towards its quota.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from reconciler.aws.ratelimit import RateLimiter

THROTTLES = frozenset({"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"})
TRANSIENT = frozenset({"KMSInternalException", "DependencyTimeoutException", "ServiceUnavailableException",
                       "InternalFailure", "InternalError", "RequestTimeout", "RequestTimeoutException"})


def error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def is_throttle(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in THROTTLES


def is_transient(exc: BaseException) -> bool:
    """An error after which the request may or may not have taken effect, worth another try."""
    if isinstance(exc, (HTTPClientError, BotoConnectionError)):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
    return error_code(exc) in TRANSIENT or status >= 500


@dataclass
class RetryPolicy:
    throttle_attempts: int = 12  # 10% of calls throttled at random: one in 10^12 calls fails
    error_attempts: int = 8  # what botocore's retries allowed before
    throttle_intervals: float = 1.0  # the first throttle backoff: up to this many request intervals...
    throttle_cap_intervals: float = 64.0  # ...doubling each time, up to this many...
    error_base: float = 0.25  # seconds, the first backoff after an error, doubling each time...
    cap: float = 20.0  # ...and never more than this many seconds
    unlimited_base: float = 0.05  # seconds: the first throttle backoff of an operation without a quota


class Caller:
    def __init__(self, limiter: RateLimiter, *, sleep: Callable[[float], None],
                 policy: RetryPolicy | None = None, rng: random.Random | None = None) -> None:
        self.limiter = limiter
        self.sleep = sleep
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()

    def __call__(self, operation: str, send: Callable[[], Any], *, retry_errors: bool = True) -> Any:
        throttles = errors = 0
        while True:
            sent_at = self.limiter.acquire(operation)
            try:
                result = send()
            except Exception as exc:
                if is_throttle(exc):
                    self.limiter.throttled(operation, sent_at)
                    throttles += 1
                    if throttles >= self.policy.throttle_attempts:
                        raise
                    self.sleep(self.throttle_delay(operation, throttles))
                    continue
                if retry_errors and is_transient(exc):
                    errors += 1
                    if errors >= self.policy.error_attempts:
                        raise
                    self.sleep(self.error_delay(errors))
                    continue
                raise
            self.limiter.succeeded(operation)
            return result

    def throttle_delay(self, operation: str, throttles: int) -> float:
        """Full jitter: uniform up to ``interval * 2^(n-1)``, capped, the interval being 1 / the
        operation's ceiling rate."""
        rate = self.limiter.rate(operation)
        p = self.policy
        interval = 1.0 / rate if rate else p.unlimited_base
        ceiling = min(p.cap, interval * p.throttle_cap_intervals)
        return self.rng.uniform(0.0, min(ceiling, interval * p.throttle_intervals * 2 ** (throttles - 1)))

    def error_delay(self, errors: int) -> float:
        p = self.policy
        return self.rng.uniform(0.0, min(p.cap, p.error_base * 2 ** (errors - 1)))
