"""Client-side request rate limiting: one token bucket per KMS operation.

KMS throttles each operation at its own requests-per-second quota per account and region. Staying
under the quota on the client side costs nothing when the quota is far away and avoids the
throttle-and-back-off cycle when it is near (DescribeCustomKeyStores and CreateKey at 5 per
second).
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Mapping

from reconciler.sandbox.settings import KMS_DEFAULT_QUOTAS


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

    def acquire(self) -> float:
        """Take one token, waiting as long as needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                delay = (1.0 - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay


class RateLimiter:
    """Per-operation token buckets; operations without a quota are not limited."""

    def __init__(self, quotas: Mapping[str, float] | None = None, *, enabled: bool = True) -> None:
        self.quotas = dict(KMS_DEFAULT_QUOTAS)
        self.quotas.update(quotas or {})
        self.enabled = enabled
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, operation: str) -> TokenBucket | None:
        if not self.enabled or operation not in self.quotas:
            return None
        with self._lock:
            if operation not in self._buckets:
                # a burst of one second's worth, like the service's own accounting
                self._buckets[operation] = TokenBucket(self.quotas[operation])
            return self._buckets[operation]

    def acquire(self, operation: str) -> None:
        bucket = self.bucket(operation)
        if bucket is not None:
            bucket.acquire()
