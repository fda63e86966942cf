"""The fault model and the call accounting, applied to every KMS request in the wire layer."""

from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError

from reconciler.sandbox import responses
from tests.conftest import make_client
from tests.sandbox.helpers import kms_error, xks_params


@pytest.fixture
def fake_monotonic(monkeypatch):
    """Quota buckets run on real monotonic time; tests drive it by hand."""
    now = [1000.0]
    monkeypatch.setattr(responses, "monotonic", lambda: now[0])
    return now


def _outcome(call):
    try:
        call()
        return "ok"
    except ClientError as error:
        return error.response["Error"]["Code"]


# --- request quotas ----------------------------------------------------------------------------


def test_describe_custom_key_stores_quota_is_5_per_second(kms, sandbox, fake_monotonic):
    """Request quotas: DescribeCustomKeyStores 5 rps per account and Region; beyond it KMS answers
    ThrottlingException ("Rate exceeded")."""
    sandbox.faults.quotas_enabled = True
    for _ in range(5):
        kms.describe_custom_key_stores()
    with kms_error("ThrottlingException", message_contains="Rate exceeded"):
        kms.describe_custom_key_stores()
    kms.list_keys()  # another operation has its own bucket (500 rps)
    fake_monotonic[0] += 0.2  # one token back
    kms.describe_custom_key_stores()
    with kms_error("ThrottlingException"):
        kms.describe_custom_key_stores()
    assert responses.call_stats.throttled["DescribeCustomKeyStores"] == 2
    assert responses.call_stats.calls["DescribeCustomKeyStores"] == 8


def test_paged_read_avoids_throttling_that_per_store_reads_hit(kms, sandbox, fake_monotonic):
    """Reference: "reading stores one call per store throttles quickly, while one paged call
    (Limit up to 1000) reads them all"."""
    ids = [kms.create_custom_key_store(**xks_params(f"s{i}", endpoint=f"https://p{i}.example.com"))["CustomKeyStoreId"] for i in range(8)]
    sandbox.faults.quotas_enabled = True
    assert len(kms.describe_custom_key_stores(Limit=1000)["CustomKeyStores"]) == 8
    outcomes = [_outcome(lambda i=i: kms.describe_custom_key_stores(CustomKeyStoreId=i)) for i in ids]
    assert outcomes.count("ThrottlingException") == 4  # 5 tokens, one already spent


def test_quota_overrides_and_unlisted_operations(kms, sandbox, fake_monotonic):
    sandbox.faults.quotas_enabled = True
    sandbox.faults.quota_overrides["CreateKey"] = 2
    kms.create_key()
    kms.create_key()
    with kms_error("ThrottlingException"):
        kms.create_key()
    for _ in range(20):  # GenerateRandom is not in the quota table
        kms.generate_random(NumberOfBytes=8)


def test_quotas_are_per_account_and_region(sandbox, fake_monotonic):
    sandbox.faults.quotas_enabled = True
    east, west = make_client("kms"), make_client("kms", region="us-west-2")
    for _ in range(5):
        east.describe_custom_key_stores()
    with kms_error("ThrottlingException"):
        east.describe_custom_key_stores()
    west.describe_custom_key_stores()


# --- throttle_rate / error_rate / lost responses -----------------------------------------------


def test_throttle_rate_answers_throttling_before_any_effect(kms, sandbox):
    sandbox.faults.throttle_rate = 1.0
    with kms_error("ThrottlingException"):
        kms.create_custom_key_store(**xks_params("never"))
    sandbox.faults.throttle_rate = 0.0
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    assert responses.call_stats.throttled["CreateCustomKeyStore"] == 1


def test_error_rate_answers_kms_internal_exception_before_any_effect(kms, sandbox):
    sandbox.faults.error_rate = 1.0
    with kms_error("KMSInternalException"):
        kms.create_key()
    sandbox.faults.error_rate = 0.0
    assert kms.list_keys()["Keys"] == []
    assert responses.call_stats.internal_errors["CreateKey"] == 1


def test_lost_response_makes_the_change_but_answers_kms_internal_exception(kms, sandbox):
    """A lost response: the store is created, the caller sees KMSInternalException, and a blind
    retry then fails with CustomKeyStoreNameInUseException (the caller must not create twice)."""
    sandbox.faults.lost_response_rate = 1.0
    with kms_error("KMSInternalException"):
        kms.create_custom_key_store(**xks_params("once"))
    assert [s["CustomKeyStoreName"] for s in kms.describe_custom_key_stores()["CustomKeyStores"]] == ["once"]
    with kms_error("CustomKeyStoreNameInUseException"):
        kms.create_custom_key_store(**xks_params("once"))
    assert responses.call_stats.lost_responses["CreateCustomKeyStore"] == 1


def test_lost_responses_only_hit_successful_mutating_requests(kms, sandbox):
    sandbox.faults.lost_response_rate = 1.0
    kms.list_keys()  # read: never lost
    with kms_error("CustomKeyStoreNotFoundException"):  # failed write: its own error
        kms.connect_custom_key_store(CustomKeyStoreId="cks-0123456789abcdef0")
    assert sum(responses.call_stats.lost_responses.values()) == 0


def test_faults_are_deterministic_for_a_seed(kms, sandbox):
    """Faults draw from settings.rng, so a seed gives the same sequence."""
    sandbox.faults.error_rate = 0.5

    def run():
        sandbox.rng.seed(42)
        return [_outcome(kms.describe_custom_key_stores) for _ in range(30)]

    first, second = run(), run()
    assert first == second
    assert {"ok", "KMSInternalException"} == set(first)


# --- latency -----------------------------------------------------------------------------------


def test_latency_is_real_time_and_concurrent_callers_overlap(sandbox):
    """latency_ms is slept outside the host bracket, so concurrent callers overlap."""
    sandbox.faults.latency_ms = 150
    clients = [make_client("kms") for _ in range(4)]
    start = time.monotonic()
    clients[0].list_keys()
    single = time.monotonic() - start
    assert single >= 0.15
    start = time.monotonic()
    threads = [threading.Thread(target=c.list_keys) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 0.15 * 4 * 0.75


# --- call accounting -----------------------------------------------------------------------------


def test_every_served_call_is_counted_per_operation(kms, xks_store):
    responses.call_stats.reset()
    store_id = xks_store()
    kms.describe_custom_key_stores(CustomKeyStoreId=store_id)
    kms.create_key()
    kms.list_keys()
    kms.list_keys()
    assert responses.call_stats.calls["CreateCustomKeyStore"] == 1
    assert responses.call_stats.calls["DescribeCustomKeyStores"] == 1
    assert responses.call_stats.calls["CreateKey"] == 1
    assert responses.call_stats.calls["ListKeys"] == 2
    assert responses.call_stats.total == 5
    snapshot = responses.call_stats.snapshot()
    assert snapshot["calls"]["ListKeys"] == 2 and snapshot["throttled"] == {}
