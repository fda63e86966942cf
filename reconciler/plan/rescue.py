"""The rescue window: for each decommission, when each key is (or will be) deleted and how to
rescue it, and the schedule (quarantine, waiting period, store deletion) the renderers draw.

Pure: made from the desired state, the live state, the planned steps and the plan's time, by
:func:`reconciler.plan.make.build_plan`, and kept in the plan (renderers decide nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from reconciler.aws.cli_hint import aws_cli
from reconciler.live.model import LiveKey, LiveState
from reconciler.plan.decommission import label, quarantine_start
from reconciler.plan.desired import DesiredState, DesiredStore
from reconciler.plan.model import Action, Step, ceil_seconds, iso


def rescue_hint(store: DesiredStore | None, key: LiveKey, region: str, where: dict[str, Any] | None = None) -> str:
    """The manifest change that rescues a key pending deletion (a declared key pending deletion
    is rescued by the next apply); the KMS command for a key no manifest can declare."""
    in_file = f" in {store.source.rsplit(':', 2)[0]}" if store is not None and store.source else ""
    if key.xks_key_id:
        declare = f"xksKeyId: {key.xks_key_id}"
    elif key.aliases:
        declare = f"alias: {key.aliases[0]}"
    else:
        command = aws_cli(["kms", "cancel-key-deletion", "--key-id", key.key_id], region, where)
        return f"{command} (no alias: a CloudHSM key is declared by its alias)"
    if store is not None and store.state == "present" and _declared(store, key):
        # the manifest names it already, yet the plan does not take this key for it (it is refused:
        # two declarations on one key, or a candidate the tool does not guess at): declaring it again
        # changes nothing, so the rescue is by hand
        command = aws_cli(["kms", "cancel-key-deletion", "--key-id", key.key_id], region, where)
        return (f"{command}: the manifest declares {declare}{in_file} already, but the plan does not take this key "
                "for it (see its refusals); then settle what the refusal names and plan again")
    state = "set spec.state: present and " if store is not None and store.state == "absent" else ""
    return f"{state}declare the key under spec.keys ({declare}){in_file}, then apply"


def _declared(store: DesiredStore, key: LiveKey) -> bool:
    if key.xks_key_id:
        return any(k.xks_key_id == key.xks_key_id for k in store.keys)
    return any(k.alias in key.aliases for k in store.keys if k.alias)


def schedules(desired: DesiredState, live: LiveState, steps: tuple[Step, ...], now: datetime,
              where: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One entry per store with keys pending deletion or being decommissioned."""
    wanted = {s.name: s for s in desired.stores}
    out = []
    for name, have in sorted(live.stores.items()):
        want = wanted.get(name)
        if want is None:
            continue
        mine = [s for s in steps if s.store == name]
        scheduled = {s.params.get("keyId"): s for s in mine if s.action == Action.schedule_key_deletion}
        keys = []
        for key in sorted(have.keys, key=lambda k: (label(k), k.key_id)):
            if key.pending_deletion and key.deletion_date:
                date, planned = ceil_seconds(key.deletion_date), False
            elif key.key_id in scheduled:
                step = scheduled[key.key_id]
                date = (step.deferred_until or now) + timedelta(days=int(step.params["pendingWindowInDays"]))
                planned = True
            else:
                continue
            rescued = any(s.action == Action.cancel_key_deletion and s.params.get("keyId") == key.key_id
                          for s in mine)
            keys.append({"key": label(key), "keyId": key.key_id, "deletionDate": iso(ceil_seconds(date)),
                         "scheduled": not planned, "rescuedByThisPlan": rescued,
                         "rescue": ("this plan rescues it (cancel_key_deletion)" if rescued
                                    else rescue_hint(want, key, live.region, where))})
        if not keys and not (want.state == "absent" and want.quarantine_days and have.keys):
            continue
        entry: dict[str, Any] = {"store": name, "today": iso(now), "keys": keys}
        if want.state == "absent" and want.quarantine_days:
            starts = [d for d in (quarantine_start(k) for k in have.keys) if d]
            if starts or any(s.action == Action.start_quarantine for s in mine):
                start = min(starts) if starts else now
                entry["quarantine"] = {"start": iso(ceil_seconds(start)),
                                       "end": iso(ceil_seconds(start + timedelta(days=want.quarantine_days)))}
        delete = next((s for s in mine if s.action == Action.delete_store), None)
        if delete is not None:
            entry["storeDeletion"] = iso(delete.deferred_until or now)
        out.append(entry)
    return out
