"""A decommission's rules on plain values (the planner is pure): the evidence of use, its absence,
and where the quarantine's start comes from. The end-to-end stories are in test_quarantine_e2e.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from reconciler.live.usage import Evidence, KeyUse, read_evidence
from reconciler.plan.matching import QUARANTINE_TAG
from reconciler.plan.model import Action, iso
from tests.plan.test_planner import NOW, live, live_key, live_store, store
from reconciler.plan.desired import DesiredState
from reconciler.plan.planner import diff


def decommission(evidence, *, quarantine=0, keys=None, allow=False, **store_kw):
    keys = keys if keys is not None else (live_key(1), live_key(2))
    state = replace(live(live_store(keys=keys, **store_kw)), evidence=evidence)
    desired = DesiredState(region="us-east-1", stores=(store(state="absent", quarantine_days=quarantine),))
    return diff(desired, state, NOW, allow_recent_use=allow)


def test_without_cloudtrail_permission_a_warning_and_the_rule_refuses():
    """"A runner without CloudTrail permission gets a clear warning, and the refusal rule then
    refuses (it never assumes 'unused')"."""
    denied = Evidence(error="CloudTrail LookupEvents failed with AccessDeniedException: the credentials may not "
                            "call cloudtrail:LookupEvents (add it: reconciler iam-policy --mode plan)")
    steps, findings = decommission(denied)
    assert not [s for s in steps if s.action == Action.schedule_key_deletion]
    warnings = [f for f in findings if f.kind == "warning"]
    refusals = [f for f in findings if f.kind == "refused"]
    assert {f.key for f in warnings} == {f.key for f in refusals} == {"ext-1", "ext-2"}
    assert "cloudtrail:LookupEvents" in warnings[0].message and "never assumes" in refusals[0].message
    # --allow-recent-use lets it through, saying so
    steps, findings = decommission(denied, allow=True)
    assert len([s for s in steps if s.action == Action.schedule_key_deletion]) == 2
    assert all("--allow-recent-use" in f.message for f in findings if f.kind == "note")


def test_the_reader_turns_access_denied_into_evidence_with_an_error():
    class Denied:
        def lookup_events(self, **kwargs):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "LookupEvents")

    evidence = read_evidence(Denied(), ["arn:k-1"], NOW, clock=lambda: 0.0, sleep=lambda s: None)
    assert evidence.error and "cloudtrail:LookupEvents" in evidence.error and not evidence.known("arn:k-1")


@pytest.mark.parametrize("days_ago, refused", [(3, True), (29, True), (31, False), (60, False)])
def test_a_use_within_refuse_if_used_within_days_refuses(days_ago, refused):
    use = KeyUse(time=NOW - timedelta(days=days_ago), operation="Decrypt", principal="arn:aws:iam::1:user/app")
    steps, findings = decommission(Evidence(last_use={"arn:k-1": use, "arn:k-2": None}))
    scheduled = {s.key for s in steps if s.action == Action.schedule_key_deletion}
    assert scheduled == ({"ext-2"} if refused else {"ext-1", "ext-2"})
    if refused:
        [finding] = [f for f in findings if f.kind == "refused"]
        assert "Decrypt by arn:aws:iam::1:user/app" in finding.message


def test_the_quarantine_start_comes_from_the_tag_and_only_attempts_since_it_count():
    started = NOW - timedelta(days=20)
    tag = ((QUARANTINE_TAG, iso(started)),)
    keys = (live_key(1, state="Unavailable", tags=tag), live_key(2, state="Unavailable", tags=tag))
    before = KeyUse(time=started - timedelta(days=1), operation="Encrypt", principal="p")
    during = KeyUse(time=started + timedelta(days=1), operation="Decrypt", principal="p",
                    error_code="KMSInvalidStateException")
    steps, findings = decommission(Evidence(last_use={"arn:k-1": before, "arn:k-2": during}), quarantine=14,
                                   keys=keys, state="DISCONNECTED")
    assert [s.key for s in steps if s.action == Action.schedule_key_deletion] == ["ext-1"]
    assert not [s for s in steps if s.action in (Action.disconnect_store, Action.start_quarantine)]
    [finding] = [f for f in findings if f.kind == "refused"]
    assert finding.key == "ext-2" and "during its quarantine" in finding.message

    # 10 days in: the steps wait for the quarantine's end, dated from the tag
    keys_recent = tuple(replace(k, tags=((QUARANTINE_TAG, iso(NOW - timedelta(days=10))),)) for k in keys)
    steps, _ = decommission(Evidence(last_use={}), quarantine=14, keys=keys_recent, state="DISCONNECTED")
    dates = {s.deferred_until for s in steps if s.action == Action.schedule_key_deletion}
    assert dates == {NOW + timedelta(days=4)}


def _read_for(keys: int, monkeypatch):
    """read_evidence_for on a connection to AWS (not the sandbox) with ``keys`` keys to look up, on a
    fake clock: what it printed and how long its pacing took."""
    import time
    from types import SimpleNamespace

    from reconciler.plan.make import read_evidence_for

    clock = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))

    class Trail:
        calls = 0

        def lookup_events(self, **kwargs):
            Trail.calls += 1
            return {"Events": []}

    state = live(live_store(keys=tuple(live_key(n) for n in range(1, keys + 1))))
    desired = SimpleNamespace(state=DesiredState(region="us-east-1", stores=(store(state="absent"),)))
    conn = SimpleNamespace(sandbox=None, now=lambda: NOW, client=lambda name: Trail())
    evidence = read_evidence_for(conn, desired, state)
    assert Trail.calls == keys and all(evidence.known(f"arn:k-{n}") for n in range(1, keys + 1))
    return clock[0]


def test_a_long_cloudtrail_read_is_announced_and_paced_under_the_quota(monkeypatch, capsys):
    """LookupEvents: 2 requests per second per account and Region. 60 keys take about half a
    minute at that quota: the plan says so before it starts; the pace is under the quota, or
    under the one RECONCILER_KMS_QUOTAS gives as LookupEvents."""
    monkeypatch.delenv("RECONCILER_KMS_QUOTAS", raising=False)
    took = _read_for(60, monkeypatch)
    assert 59 / 2 <= took <= 60 / 1.8
    err = capsys.readouterr().err
    assert "reading CloudTrail's evidence of use of 60 key(s)" in err and "about 32 s" in err

    monkeypatch.setenv("RECONCILER_KMS_QUOTAS", "LookupEvents=20")
    took = _read_for(60, monkeypatch)
    assert 59 / 20 <= took <= 60 / 18
    assert capsys.readouterr().err == ""  # 3 s: not worth a note
