"""Planning a decommission (``state: absent``): quarantine, evidence of last use, deletion.

Pure, like the planner that calls it: the live state (with CloudTrail's evidence of use, read by
:mod:`reconciler.live.usage`) and the clock come in, steps and findings go out.

* Without a quarantine (``deletion.quarantineDays: 0``): every key of the store is scheduled for
  deletion, the store is disconnected, and deleted once the last key is gone (a deferred step).
* With one: the store is disconnected first (its keys unusable, still recoverable) and each key
  is tagged with the quarantine's start (:data:`QUARANTINE_TAG`: recorded in AWS, so any machine
  sees it); the keys are scheduled for deletion only by a run after the quarantine has lasted
  ``quarantineDays`` (deferred steps until then, with their dates), and the store deleted once
  they are gone.
* Before a key is scheduled, its last cryptographic use (CloudTrail) is checked: used within
  ``refuseIfUsedWithinDays`` (without a quarantine), or any attempt at all since the quarantine
  began, failed ones included (with one), refuses the key's deletion, naming the use, unless
  ``--allow-recent-use``. When CloudTrail could not be read, the check refuses too: it never
  assumes "unused".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from reconciler.live.model import LiveKey, LiveStore
from reconciler.plan.desired import DesiredStore
from reconciler.plan.matching import QUARANTINE_TAG
from reconciler.plan.model import Action, ceil_seconds, iso, parse_iso


class Out(Protocol):
    def add(self, action: Action, store: str, reason: str, *, key: str | None = None,
            params: dict[str, Any] | None = None, depends_on: list[str | None] | None = None,
            deferred_until: datetime | None = None) -> str: ...

    def find(self, kind: str, store: str, message: str, key: str | None = None) -> None: ...


def label(key: LiveKey) -> str:
    """How a live key is named in steps and findings: XksKeyId, else first alias, else KeyId."""
    return key.xks_key_id or (key.aliases[0] if key.aliases else key.key_id)


def quarantine_start(key: LiveKey) -> datetime | None:
    """When the key's quarantine began, from its tag (None: not in quarantine, or unreadable)."""
    value = key.tag_dict.get(QUARANTINE_TAG)
    try:
        return parse_iso(value) if value else None
    except ValueError:
        return None


def decommission(want: DesiredStore, have: LiveStore | None, now: datetime, out: Out, evidence: Any,
                 allow_recent_use: bool) -> None:
    if have is None:
        return  # already gone: no change
    window = want.pending_window_days
    quarantine = want.quarantine_days
    latest: datetime | None = None
    after: list[str | None] = []
    keys = sorted(have.keys, key=lambda k: (label(k), k.key_id))
    for key in keys:
        if key.pending_deletion and key.deletion_date and (latest is None or key.deletion_date > latest):
            latest = key.deletion_date
    active = [k for k in keys if not k.pending_deletion]
    disconnected = have.connection_state in ("DISCONNECTED", "DISCONNECTING")
    disconnect_reason = "a store must be DISCONNECTED before KMS deletes it; its keys are unavailable from now on"
    first: str | None = None
    if quarantine and active and not disconnected:
        first = out.add(Action.disconnect_store, want.name,
                        f"the quarantine ({quarantine} days) begins by disconnecting the store: its keys are "
                        "unusable from now on, and still recoverable (put the store back to present)",
                        params={"from": have.connection_state})
        after.append(first)
    if quarantine and active:
        untagged = [k for k in active if quarantine_start(k) is None]
        if untagged:
            first = out.add(Action.start_quarantine, want.name,
                            f"records the quarantine's start on the store's {len(untagged)} key(s) as the tag "
                            f"{QUARANTINE_TAG} (in AWS, so any machine sees it); deletion is scheduled "
                            f"{quarantine} days later",
                            params={"tag": QUARANTINE_TAG, "keyIds": [k.key_id for k in untagged],
                                    "quarantineDays": quarantine}, depends_on=[first])
            after.append(first)
    for key in active:
        started = quarantine_start(key) if quarantine else None
        if quarantine:
            ends = ceil_seconds((started or now) + timedelta(days=quarantine))
            due = ends if ends > now else None
        else:
            ends, due = None, None
        when = (due or now) + timedelta(days=window)
        latest = when if latest is None or when > latest else latest
        params: dict[str, Any] = {"keyId": key.key_id, "pendingWindowInDays": window}
        use = _last_use(evidence, key)
        if use is not None:
            params["lastUse"] = use.to_dict()
        if quarantine:
            params["quarantine"] = {"started": iso(started) if started else None, "days": quarantine,
                                    "ends": iso(ends)}
        if due is None and not _use_allows(want, key, started, evidence, now, allow_recent_use, out):
            continue
        if due is not None and started is not None and use is not None and use.time >= started:
            out.find("warning", want.name,
                     f"someone tried to use it during its quarantine (since {iso(started)}): {use.describe()}; "
                     f"a plan after {iso(due)} will refuse its deletion (unless --allow-recent-use): find out "
                     "who still needs it", key=label(key))
        reason = (f"the store is being decommissioned; KMS deletes the key after {window} days, and data "
                  "encrypted under it becomes unrecoverable then (until then cancel_key_deletion rescues it)")
        if due is not None:
            reason = (f"the quarantine {'began ' + iso(started) if started else 'begins with this apply'} and "
                      f"lasts {quarantine} days: the key is scheduled for deletion by a run after {iso(due)}, "
                      "once no attempt to use it was seen in CloudTrail meanwhile. " + reason)
        last = f"; last cryptographic use: {use.describe()}" if use else (
            "; no cryptographic use in CloudTrail's last 90 days" if _known(evidence, key) else "")
        after.append(out.add(Action.schedule_key_deletion, want.name, reason + last, key=label(key),
                             params=params, depends_on=[first] if quarantine else None, deferred_until=due))
    if not disconnected and not (quarantine and active):
        after.append(out.add(Action.disconnect_store, want.name, disconnect_reason,
                             params={"from": have.connection_state}))
    if have.keys:
        reason = (f"deletes the store once its {len(have.keys)} key(s) are gone: KMS refuses to delete a store "
                  "that holds any key, and the last DeletionDate is the date shown")
    else:
        reason = "the store is declared absent and holds no keys"
    out.add(Action.delete_store, want.name, reason, params={"id": have.id},
            depends_on=after, deferred_until=ceil_seconds(latest) if have.keys and latest else None)


def _known(evidence: Any, key: LiveKey) -> bool:
    return evidence is not None and evidence.known(key.arn)


def _last_use(evidence: Any, key: LiveKey):
    return evidence.last_use.get(key.arn) if _known(evidence, key) else None


def _use_allows(want: DesiredStore, key: LiveKey, started: datetime | None, evidence: Any, now: datetime,
                allow_recent_use: bool, out: Out) -> bool:
    """Whether the evidence of use lets the key be scheduled for deletion now; a finding otherwise
    (refused, or with --allow-recent-use a note naming what was let through)."""
    days = want.refuse_if_used_within_days
    if not days or evidence is None:
        return True  # the check is off, or the caller did not consult CloudTrail (the CLI always does)
    name = label(key)
    if not _known(evidence, key):
        why = getattr(evidence, "error", None) or "CloudTrail was not read"
        out.find("warning", want.name, f"no evidence of the key's last use: {why}", key=name)
        problem = ("its last use is unknown, and the refusal rule never assumes \"unused\" "
                   "(spec.deletion.refuseIfUsedWithinDays)")
    else:
        use = evidence.last_use.get(key.arn)
        since = started if started is not None else now - timedelta(days=days)
        if use is None or use.time < since:
            return True
        if started is not None:
            problem = (f"someone tried to use it during its quarantine (since {iso(started)}): {use.describe()}; "
                       "it is still needed")
        else:
            problem = f"it was used within the last {days} days: {use.describe()}"
    if allow_recent_use:
        out.find("note", want.name, f"--allow-recent-use: scheduled for deletion although {problem}", key=name)
        return True
    out.find("refused", want.name,
             f"the key's deletion is not scheduled: {problem}. Find out who still needs it; to delete it "
             "anyway, plan and apply with --allow-recent-use", key=name)
    return False
