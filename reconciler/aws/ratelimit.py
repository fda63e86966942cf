"""Client-side request rate limiting: one token bucket per KMS operation.

KMS throttles each operation at its own requests-per-second quota per account and region. Staying
under the quota on the client side costs nothing when the quota is far away and avoids the
throttle-and-back-off cycle when it is near (DescribeCustomKeyStores and CreateKey at 5 per
second).

The quotas default to the KMS request quota table (:data:`KMS_DEFAULT_QUOTAS`); an account whose
quotas were raised or lowered overrides them per operation, with ``RateLimiter(quotas=...)`` or
the environment variable ``RECONCILER_KMS_QUOTAS`` (``"DescribeKey=1000,CreateKey=10"``).

Each bucket runs a little below the quota (:data:`HEADROOM`) and with a burst of half a second
(:data:`BURST_SECONDS`), where the service's own bucket holds a full second: requests reach KMS
with some jitter after they leave, and a client that sent at exactly the quota with the same burst
would now and then arrive two requests too close together and be throttled. With the smaller
burst and the headroom, requests that leave within the limit also arrive within it (as long as
their delays spread by less than about half a second).

The buckets also learn from throttles (:meth:`RateLimiter.throttled`, :meth:`RateLimiter.succeeded`):
a ThrottlingException on one operation lowers the rate of that operation only, multiplicatively
(:data:`DECREASE`), once per congestion event (a throttle of a request sent before the last cut is
the same event), and each success raises it again by a fixed share of its ceiling
(:data:`INCREASE`) until it is back at the quota: additive increase, multiplicative decrease, per
operation. Counted in calls, not seconds, so it behaves the same at any quota. A throttle on
CreateKey slows CreateKey, not DescribeKey (botocore's adaptive retry mode, by contrast, slows the
whole client down after any throttle).
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Callable, Iterable, Mapping

from reconciler.errors import UserError
from reconciler.kms_quotas import KMS_DEFAULT_QUOTAS

QUOTAS_ENV = "RECONCILER_KMS_QUOTAS"
HEADROOM = 0.95  # fraction of the quota the client sends at
BURST_SECONDS = 0.5  # the client's burst, in seconds of quota (KMS: about one second)
DECREASE = 0.9  # a throttle multiplies the operation's rate by this...
INCREASE = 0.025  # ...and each success adds this share of its ceiling back
MIN_SHARE = 0.02  # the rate never goes below this share of the ceiling


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1.0, rate))
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def set_rate(self, rate: float, burst: float) -> None:
        """Change the rate (and burst) from now on; tokens already earned are kept, up to the new burst."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self.rate = float(rate)
            self.capacity = float(burst)
            self._tokens = min(self._tokens, self.capacity)

    def acquire(self) -> float:
        """Take one token, waiting as long as needed; returns the seconds waited.

        A waiting caller reserves its token (the count goes negative) and sleeps until it is due,
        so concurrent callers queue up in order instead of all waking to race for one token.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1.0
            delay = 0.0 if self._tokens >= 0.0 else -self._tokens / self.rate
        if delay > 0:
            self._sleep(delay)
        return delay


class QuotaError(UserError, ValueError):
    """A malformed quota override (``RECONCILER_KMS_QUOTAS``): the user's to fix."""


def parse_quotas(text: str | None) -> dict[str, float]:
    """``"DescribeKey=1000, CreateKey=10"`` -> ``{"DescribeKey": 1000.0, "CreateKey": 10.0}``."""
    quotas: dict[str, float] = {}
    for item in (text or "").replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or not name.strip() or not math.isfinite(rate) or rate <= 0:
            raise QuotaError(f"{QUOTAS_ENV}: {item!r} is not OPERATION=REQUESTS_PER_SECOND (a positive number), "
                             'e.g. RECONCILER_KMS_QUOTAS="DescribeKey=1000,CreateKey=10"')
        quotas[name.strip()] = rate
    return quotas


def env_quotas() -> dict[str, float]:
    return parse_quotas(os.environ.get(QUOTAS_ENV))


class RateLimiter:
    """Per-operation token buckets; operations without a quota are not limited.

    ``quotas`` override the defaults per operation; so does ``RECONCILER_KMS_QUOTAS`` (the
    explicit argument wins over the environment, which wins over the table).
    """

    def __init__(self, quotas: Mapping[str, float] | None = None, *, enabled: bool = True,
                 headroom: float = HEADROOM, burst_seconds: float = BURST_SECONDS,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self.quotas = dict(KMS_DEFAULT_QUOTAS)
        self.quotas.update(env_quotas())
        self.quotas.update(quotas or {})
        self.enabled = enabled
        self.headroom = headroom
        self.burst_seconds = burst_seconds
        self._buckets: dict[str, TokenBucket] = {}
        self._cut_at: dict[str, float] = {}  # operation -> when its rate was last lowered
        self._lock = threading.Lock()

    def rate(self, operation: str) -> float | None:
        """Requests per second this client sends ``operation`` at, at most (None: unlimited): its
        ceiling, below the quota by the headroom. A throttle lowers the current rate below it for a
        while (:meth:`current_rate`)."""
        if not self.enabled or operation not in self.quotas:
            return None
        return self.quotas[operation] * self.headroom

    def current_rate(self, operation: str) -> float | None:
        """The rate ``operation`` is sent at now, after what throttles taught (None: unlimited)."""
        bucket = self.bucket(operation)
        return None if bucket is None else bucket.rate

    def _burst(self, rate: float) -> float:
        return max(1.0, rate * self.burst_seconds)

    def bucket(self, operation: str) -> TokenBucket | None:
        rate = self.rate(operation)
        if rate is None:
            return None
        with self._lock:
            if operation not in self._buckets:
                self._buckets[operation] = TokenBucket(rate, burst=self._burst(rate),
                                                       clock=self._clock, sleep=self._sleep)
            return self._buckets[operation]

    def acquire(self, operation: str) -> float:
        """Wait for ``operation``'s token; returns when the request leaves (this limiter's clock),
        to pass to :meth:`throttled` if it comes back throttled."""
        bucket = self.bucket(operation)
        if bucket is not None:
            bucket.acquire()
        return self._clock()

    def throttled(self, operation: str, sent_at: float | None = None) -> None:
        """KMS throttled ``operation``: lower its rate by :data:`DECREASE`, unless the request was
        sent before the last cut (the requests in flight at that moment are the same congestion
        event, and must not cut it again)."""
        bucket = self.bucket(operation)
        if bucket is None:
            return
        ceiling = self.rate(operation) or bucket.rate
        with self._lock:
            last = self._cut_at.get(operation)
            if sent_at is not None and last is not None and sent_at <= last:
                return
            self._cut_at[operation] = self._clock()
            rate = max(ceiling * MIN_SHARE, bucket.rate * DECREASE)
            bucket.set_rate(rate, self._burst(rate))

    def succeeded(self, operation: str) -> None:
        """A request of ``operation`` went through: raise its rate by :data:`INCREASE` of its ceiling,
        up to the ceiling."""
        bucket = self.bucket(operation)
        if bucket is None:
            return
        ceiling = self.rate(operation) or bucket.rate
        if bucket.rate < ceiling:
            with self._lock:
                rate = min(ceiling, bucket.rate + ceiling * INCREASE)
                bucket.set_rate(rate, self._burst(rate))

    def concurrency(self, operations: Iterable[str], latency: float, *, slack: float = 1.5,
                    low: int = 4, high: int = 128) -> int:
        """Workers needed to keep ``operations`` at their rates when each call takes ``latency``
        seconds (Little's law: in flight = rate x latency), with ``slack``, within [low, high].
        An unlimited operation counts as the highest quota of the others."""
        rates = [self.rate(op) for op in operations]
        known = [r for r in rates if r is not None]
        fallback = max(known) if known else max(self.quotas.values(), default=100.0)
        total = sum(r if r is not None else fallback for r in rates)
        return max(low, min(high, math.ceil(total * max(latency, 0.001) * slack)))
