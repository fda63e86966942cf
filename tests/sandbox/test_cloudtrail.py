"""The emulator's CloudTrail: cryptographic KMS calls recorded as events (failed ones with their
error code), and LookupEvents as the CloudTrail API Reference describes it (botocore's
'cloudtrail' model): one lookup attribute, StartTime/EndTime, MaxResults 1-50, NextToken paging,
the last 90 days, newest first."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_client


@pytest.fixture
def trail(sandbox):
    return make_client("cloudtrail")


def events_of(trail, arn: str, **kwargs) -> list[dict]:
    return trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}],
                               **kwargs)["Events"]


def test_cryptographic_calls_are_recorded_with_the_caller_and_the_error_code_of_failures(kms, trail, sandbox,
                                                                                          xks_store):
    """CloudTrail records failed attempts too: a Decrypt refused because the store is disconnected
    (KMSInvalidStateException, the key is Unavailable) is an event with its errorCode."""
    store_id = xks_store(connect=True)
    key = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId="k-1")["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    sandbox.clock.advance(60)
    kms.decrypt(CiphertextBlob=blob)  # names the key only through the ciphertext
    kms.disconnect_custom_key_store(CustomKeyStoreId=store_id)
    sandbox.clock.advance(60)
    with pytest.raises(ClientError) as refused:
        kms.decrypt(CiphertextBlob=blob)
    assert refused.value.response["Error"]["Code"] == "KMSInvalidStateException"
    kms.describe_key(KeyId=key["KeyId"])  # not a cryptographic call: not recorded

    events = events_of(trail, key["Arn"])
    assert [e["EventName"] for e in events] == ["Decrypt", "Decrypt", "Encrypt"]  # newest first
    assert events[0]["EventTime"] > events[1]["EventTime"] > events[2]["EventTime"]
    records = [json.loads(e["CloudTrailEvent"]) for e in events]
    assert records[0]["errorCode"] == "KMSInvalidStateException" and "errorCode" not in records[1]
    assert all(r["eventSource"] == "kms.amazonaws.com" and r["userIdentity"]["accessKeyId"] == "testing"
               for r in records)
    assert records[0]["userIdentity"]["arn"] == "arn:aws:iam::123456789012:root"
    assert events[0]["Resources"] == [{"ResourceType": "AWS::KMS::Key", "ResourceName": key["Arn"]}]
    assert records[2]["eventTime"] == (sandbox.clock.now() - timedelta(seconds=120)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_lookup_filters_pages_and_keeps_ninety_days(kms, trail, sandbox, xks_store):
    store_id = xks_store(connect=True)
    key = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId="k-1")["KeyMetadata"]
    other = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId="k-2")["KeyMetadata"]
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"old")
    sandbox.clock.advance(91 * 86400)  # beyond CloudTrail's event history
    for n in range(5):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
        sandbox.clock.advance(1)
    kms.generate_data_key(KeyId=other["KeyId"], KeySpec="AES_256")

    assert len(events_of(trail, key["Arn"])) == 5  # the 91-day-old one is gone
    assert [e["EventName"] for e in events_of(trail, other["Arn"])] == ["GenerateDataKey"]
    by_name = trail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}])
    assert len(by_name["Events"]) == 5
    # paging: MaxResults, then NextToken with the same parameters, without repeats
    first = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}],
                                MaxResults=2)
    second = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}],
                                 MaxResults=2, NextToken=first["NextToken"])
    third = trail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": key["Arn"]}],
                                MaxResults=2, NextToken=second["NextToken"])
    ids = [e["EventId"] for page in (first, second, third) for e in page["Events"]]
    assert len(ids) == len(set(ids)) == 5 and "NextToken" not in third
    # a time range
    now = sandbox.clock.now()
    recent = events_of(trail, key["Arn"], StartTime=now - timedelta(seconds=3), EndTime=now)
    assert len(recent) == 3


@pytest.mark.parametrize("kwargs, error", [
    ({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"},
                           {"AttributeKey": "EventSource", "AttributeValue": "kms.amazonaws.com"}]},
     "InvalidLookupAttributesException"),  # "Currently the list can contain only one item."
    ({"MaxResults": 51}, "InvalidMaxResultsException"),  # "Possible values are 1 through 50."
    ({"StartTime": 2_000_000_000, "EndTime": 1_000_000_000}, "InvalidTimeRangeException"),
    ({"NextToken": "not-a-token"}, "InvalidNextTokenException"),
    ({"EventCategory": "other"}, "InvalidEventCategoryException"),
])
def test_lookup_refuses_what_the_api_reference_refuses(sandbox, kwargs, error):
    raw = make_client("cloudtrail", parameter_validation=False)
    with pytest.raises(ClientError) as refused:
        raw.lookup_events(**kwargs)
    assert refused.value.response["Error"]["Code"] == error


def test_a_next_token_is_refused_with_other_parameters(kms, trail, sandbox, xks_store):
    """NextToken: "This token must be passed in with the same parameters that were specified in
    the original call"."""
    store_id = xks_store(connect=True)
    key = kms.create_key(CustomKeyStoreId=store_id, Origin="EXTERNAL_KEY_STORE", XksKeyId="k-1")["KeyMetadata"]
    for _ in range(3):
        kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    token = trail.lookup_events(MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as refused:
        events_of(trail, key["Arn"], NextToken=token)
    assert refused.value.response["Error"]["Code"] == "InvalidNextTokenException"


def test_lookup_events_is_throttled_beyond_two_per_second_when_quotas_are_on(kms, trail, sandbox, monkeypatch):
    """CloudTrail's quota: LookupEvents, 2 transactions per second per account per Region; beyond
    it a ThrottlingException (the reader paces itself below it: reconciler/live/usage.py)."""
    from reconciler.sandbox import responses

    now = [1000.0]
    monkeypatch.setattr(responses, "monotonic", lambda: now[0])
    key = kms.create_key()["KeyMetadata"]
    assert len(events_of(trail, key["Arn"])) == 0  # quotas off (the default): no limit
    sandbox.faults.quotas_enabled = True
    events_of(trail, key["Arn"]), events_of(trail, key["Arn"])
    with pytest.raises(ClientError) as throttled:
        events_of(trail, key["Arn"])
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    now[0] += 0.5  # one token back
    events_of(trail, key["Arn"])
    other = make_client("cloudtrail", region="eu-west-1")  # per Region
    other.lookup_events(MaxResults=1)
