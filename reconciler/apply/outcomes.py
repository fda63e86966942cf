"""What the executor works with and reports: the values only manifests hold, a step's result, the
run's result, the redactor of secrets, the executor's options."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from reconciler.apply.retries import RetryPolicy
from reconciler.apply.waiters import Backoff
from reconciler.aws.ratelimit import RateLimiter
from reconciler.plan.model import Step


class StoreInputs(Protocol):
    """Values only the manifests hold, resolved when a step needs them."""

    def secret_access_key(self, store: str) -> str: ...
    def key_store_password(self, store: str) -> str: ...
    def trust_anchor(self, store: str) -> str: ...


class StepError(Exception):
    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Deferred(Exception):
    def __init__(self, until: datetime | None, message: str) -> None:
        super().__init__(message)
        self.until = until


@dataclass
class StepResult:
    step: Step
    outcome: str  # ok | failed | skipped | deferred
    message: str = ""
    error_code: str | None = None
    elapsed: float = 0.0
    deferred_until: datetime | None = None


@dataclass
class ApplyResult:
    results: list[StepResult] = field(default_factory=list)

    def by_outcome(self, outcome: str) -> list[StepResult]:
        return [r for r in self.results if r.outcome == outcome]

    @property
    def failed(self) -> bool:
        return bool(self.by_outcome("failed") or self.by_outcome("skipped"))

    @property
    def deferred(self) -> list[StepResult]:
        return self.by_outcome("deferred")

    def rerun_after(self) -> datetime | None:
        """The earliest date a deferred step is due: a run after it makes progress (a quarantine's
        end, before which nothing is scheduled, comes well before the store's deletion)."""
        dates = [r.deferred_until for r in self.deferred if r.deferred_until]
        return min(dates) if dates else None

    def finish_after(self) -> datetime | None:
        """The latest date a deferred step is due (as far as this run can tell)."""
        dates = [r.deferred_until for r in self.deferred if r.deferred_until]
        return max(dates) if dates else None


class Redactor:
    """Replaces every secret value the run resolved with "(sensitive)"."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> str:
        if value:
            with self._lock:
                self._values.add(value)
        return value

    def __call__(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            text = text.replace(value, "(sensitive)")
        return text


@dataclass
class ExecutorOptions:
    timeout_seconds: float = 20 * 60
    limiter: RateLimiter = field(default_factory=RateLimiter)
    create_attempts: int = 6
    # every store's chain of steps on a worker of its own (the limiter keeps the shared quotas);
    # a store's steps mostly wait (for a connection, a disconnection, a rate-limited call), so
    # workers cost nothing while idle, and 20 stores take about as long as the busiest one
    # unless a shared quota (e.g. ScheduleKeyDeletion's 15 per second) is the limit
    max_parallel_stores: int = 64
    backoff: Backoff = field(default_factory=Backoff)  # between polls of the stores' states
    retry: RetryPolicy = field(default_factory=RetryPolicy)  # per operation, see retries.py
