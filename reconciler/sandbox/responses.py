"""The request bracket: what happens around every KMS request the emulator serves.

:func:`sandbox_call_action` replaces moto's ``KmsResponse.call_action``; the protocol layer
(:mod:`reconciler.sandbox.protocol`) calls it once it knows the operation and the request is
signed. In order, it

1. counts the call (:data:`call_stats`),
2. sleeps ``faults.latency_ms`` of real time outside the host bracket,
3. applies the per-operation request quotas (token buckets on real monotonic time plus the time the
   emulator clock was moved forward),
   ``faults.throttle_rate`` (ThrottlingException) and ``faults.error_rate``
   (KMSInternalException) before any effect,
4. reads the input and checks it against the API model (SerializationException,
   ValidationException), before any handler runs,
5. runs the operation inside ``host().request(operation, mutating)``, after settling what the
   emulator clock made due (:func:`reconciler.sandbox.timeline.settle`); a cryptographic
   operation that reached its handler is recorded as a CloudTrail event, failed or not
   (:mod:`reconciler.sandbox.trail`),
6. on a successful mutating request, with probability ``faults.lost_response_rate``, keeps the
   change but answers KMSInternalException (a lost response).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any, Callable

from moto.kms.models import kms_backends

from reconciler.sandbox import exceptions as exc
from reconciler.sandbox import protocol, trail
from reconciler.sandbox.host import host
from reconciler.sandbox.settings import current
from reconciler.sandbox.state import now
from reconciler.sandbox.timeline import settle

# ---------------------------------------------------------------------------------------------
# Call accounting
# ---------------------------------------------------------------------------------------------


class CallStats:
    """What the emulator served in this process, per KMS operation name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.internal_errors: Counter[str] = Counter()
        self.lost_responses: Counter[str] = Counter()

    def _bump(self, counter: Counter[str], operation: str) -> None:
        with self._lock:
            counter[operation] += 1

    def record_call(self, operation: str) -> None:
        self._bump(self.calls, operation)

    def record_throttled(self, operation: str) -> None:
        self._bump(self.throttled, operation)

    def record_internal_error(self, operation: str) -> None:
        self._bump(self.internal_errors, operation)

    def record_lost_response(self, operation: str) -> None:
        self._bump(self.lost_responses, operation)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.throttled.clear()
            self.internal_errors.clear()
            self.lost_responses.clear()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "throttled": dict(self.throttled),
                "internal_errors": dict(self.internal_errors),
                "lost_responses": dict(self.lost_responses),
            }


call_stats = CallStats()


# ---------------------------------------------------------------------------------------------
# Request quotas: token bucket per (account, region, operation) on real monotonic time, plus the
# emulator clock's advances: in the embedded sandbox a client's waits (its backoff, its pacing)
# advance the emulator clock instead of passing on the wall clock, and the buckets refill with them;
# otherwise a client that waited its backoff would find the bucket still empty, again and again
# ---------------------------------------------------------------------------------------------

monotonic: Callable[[], float] = time.monotonic  # tests may replace it


class QuotaBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], list[float]] = {}

    def take(self, account: str, region: str, operation: str, rate: float) -> bool:
        """Take one token; False when the operation is over its requests-per-second quota.
        Capacity is one second of quota."""
        if rate <= 0:
            return False
        capacity = max(rate, 1.0)
        t = monotonic() + current().clock.offset_seconds
        with self._lock:
            bucket = self._buckets.get((account, region, operation))
            if bucket is None:
                bucket = [capacity, t]
                self._buckets[(account, region, operation)] = bucket
            tokens = min(capacity, bucket[0] + (t - bucket[1]) * rate)
            bucket[1] = t
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return True
            bucket[0] = tokens
            return False

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()


quota_buckets = QuotaBuckets()

# Operations that change the emulated account (the embedded host saves it after them).
MUTATING_PREFIXES = (
    "Create",
    "Update",
    "Delete",
    "Connect",
    "Disconnect",
    "Schedule",
    "Cancel",
    "Enable",
    "Disable",
    "Tag",
    "Untag",
    "Put",
    "Replicate",
    "Revoke",
    "Retire",
    "Rotate",
    "Import",
)


MUTATING_OPERATIONS = frozenset({"GetParametersForImport"})  # keeps the wrapping key it returns


def is_mutating(operation: str) -> bool:
    return operation.startswith(MUTATING_PREFIXES) or operation in MUTATING_OPERATIONS


# ---------------------------------------------------------------------------------------------
# The request bracket
# ---------------------------------------------------------------------------------------------


def sandbox_call_action(self: Any) -> Any:
    """Replaces ``KmsResponse.call_action`` (see the module docstring for the order)."""
    operation = self.__dict__.get("_sandbox_operation")
    if operation is None:  # called without the protocol's dispatch
        try:
            protocol.check_signature(self.headers)
            operation = protocol.operation_of(self.headers)
        except exc.KmsError as error:
            return protocol.render_error(self, error)
    settings = current()
    faults = settings.faults
    call_stats.record_call(operation)

    if faults.latency_ms and faults.latency_ms > 0:
        time.sleep(faults.latency_ms / 1000.0)

    account, region = self.current_account, self.region
    rate = faults.quota_for(operation)
    if rate is not None and not quota_buckets.take(account, region, operation, rate):
        call_stats.record_throttled(operation)
        return protocol.render_error(self, exc.ThrottlingException("Rate exceeded"))
    rng = settings.rng
    if faults.throttle_rate > 0 and rng.random() < faults.throttle_rate:
        call_stats.record_throttled(operation)
        return protocol.render_error(self, exc.ThrottlingException("Rate exceeded"))
    if faults.error_rate > 0 and rng.random() < faults.error_rate:
        call_stats.record_internal_error(operation)
        return protocol.render_error(self, exc.KMSInternalException())

    try:
        params = protocol.read_input(self, operation)
    except exc.KmsError as error:
        return protocol.render_error(self, error)

    mutating = is_mutating(operation)
    recorded = operation in trail.RECORDED  # CloudTrail's event is saved with the account
    with host().request(operation, mutating or recorded):
        backend = kms_backends[account][region]
        settle(backend)
        result = protocol.execute(self, operation, params)
        if recorded:
            trail.record(backend, account, region, operation, params, self.headers, result, now())

    if (
        mutating
        and result[0] < 300
        and faults.lost_response_rate > 0
        and rng.random() < faults.lost_response_rate
    ):
        call_stats.record_lost_response(operation)
        return protocol.render_error(self, exc.KMSInternalException())
    return result
