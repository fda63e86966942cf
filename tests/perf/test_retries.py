"""Retries and backoff per operation (issue 15): a throttle on CreateKey slows CreateKey and nothing
else, for a while; the backoff is jittered, exponential, capped, and counted in the operation's own
request interval; errors that may have had an effect are retried only where that is safe."""

from __future__ import annotations

import random

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from reconciler.apply.retries import Caller, RetryPolicy
from reconciler.aws.ratelimit import DECREASE, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "CreateKey")


def test_a_throttle_lowers_that_operations_rate_only_and_successes_raise_it_back():
    clock = Clock()
    limiter = RateLimiter({"CreateKey": 10, "DescribeKey": 100}, clock=clock, sleep=clock.sleep)
    ceiling = limiter.rate("CreateKey")
    sent = limiter.acquire("CreateKey")
    limiter.throttled("CreateKey", sent)
    assert limiter.current_rate("CreateKey") == pytest.approx(ceiling * DECREASE)
    assert limiter.current_rate("DescribeKey") == limiter.rate("DescribeKey")
    # the requests in flight when the rate was cut are the same congestion event: no second cut
    limiter.throttled("CreateKey", sent)
    assert limiter.current_rate("CreateKey") == pytest.approx(ceiling * DECREASE)
    clock.t += 1
    limiter.throttled("CreateKey", limiter.acquire("CreateKey"))  # sent after the cut: a new event
    assert limiter.current_rate("CreateKey") == pytest.approx(ceiling * DECREASE ** 2)
    for _ in range(100):
        limiter.succeeded("CreateKey")
    assert limiter.current_rate("CreateKey") == ceiling  # back to the quota's 95%, not beyond


def test_the_rate_a_throttle_teaches_paces_the_next_requests():
    clock = Clock()
    limiter = RateLimiter({"CreateKey": 10}, clock=clock, sleep=clock.sleep, burst_seconds=0.0)
    for _ in range(5):
        limiter.throttled("CreateKey", limiter.acquire("CreateKey"))
        clock.t += 1
    rate = limiter.current_rate("CreateKey")
    start = clock.t
    for _ in range(11):
        limiter.acquire("CreateKey")
    assert clock.t - start == pytest.approx(10 / rate, rel=0.01)


def test_throttles_are_retried_with_capped_full_jitter_in_the_operations_interval():
    clock = Clock()
    limiter = RateLimiter({"CreateKey": 10}, clock=clock, sleep=lambda s: None)
    caller = Caller(limiter, sleep=clock.sleep, policy=RetryPolicy(throttle_attempts=30), rng=random.Random(1))
    answers = iter([error("ThrottlingException")] * 20 + [{"ok": True}])

    def send():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert caller("CreateKey", send) == {"ok": True}
    interval = 1 / limiter.rate("CreateKey")
    assert len(clock.slept) == 20
    for n, delay in enumerate(clock.slept, start=1):
        assert 0 <= delay <= min(64 * interval, interval * 2 ** (n - 1))
    assert max(clock.slept[10:]) > 8 * interval  # it grew...
    assert max(clock.slept) <= 64 * interval  # ...up to its cap


def test_errors_that_may_have_had_an_effect_are_retried_only_where_safe():
    clock = Clock()
    caller = Caller(RateLimiter(enabled=False), sleep=clock.sleep, rng=random.Random(1))
    calls = []

    def flaky(*failures: Exception):
        answers = iter([*failures, {"ok": True}])

        def send():
            calls.append(1)
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return send

    lost = error("KMSInternalException", 500)
    timeout = ReadTimeoutError(endpoint_url="https://kms")
    assert caller("DisconnectCustomKeyStore", flaky(lost, timeout)) == {"ok": True}
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ClientError, match="KMSInternalException"):  # a create looks before it retries
        caller("CreateKey", flaky(lost), retry_errors=False)
    assert len(calls) == 1
    calls.clear()
    assert caller("CreateKey", flaky(error("ThrottlingException")), retry_errors=False) == {"ok": True}
    assert len(calls) == 2  # a throttled create had no effect: retried as is
    calls.clear()
    with pytest.raises(ClientError, match="NotFoundException"):
        caller("DescribeKey", flaky(error("NotFoundException")))
    assert len(calls) == 1
