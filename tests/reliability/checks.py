"""Invariants every plan must satisfy, checked against the live state it was made from."""

from __future__ import annotations

from datetime import datetime

from reconciler.live.model import LiveState
from reconciler.plan.desired import DesiredState
from reconciler.plan.model import Action, Plan
from reconciler.plan.planner import XKS_OFFLINE_FIELDS

DESTRUCTIVE = {Action.schedule_key_deletion, Action.delete_store}
KEY_ACTIONS = {Action.update_key, Action.cancel_key_deletion, Action.schedule_key_deletion}


def check_scope(plan: Plan, desired: DesiredState, live: LiveState) -> None:
    """(a) nothing destroyed in a store that is not ``state: absent``; no store no manifest names
    is touched, nor a key outside the step's own store."""
    wanted = {s.name: s for s in desired.stores}
    for step in plan.steps:
        assert step.store in wanted, f"{step.id}: touches {step.store}, which no manifest names"
        if step.action in DESTRUCTIVE:
            assert wanted[step.store].state == "absent", f"{step.id}: destroys in a store that is not absent"
        if step.action in KEY_ACTIONS:
            store = live.stores.get(step.store)
            assert store is not None, f"{step.id}: a key step for a store that does not exist"
            assert step.params["keyId"] in {k.key_id for k in store.keys}, \
                f"{step.id}: key {step.params['keyId']} is not in store {step.store}"
        if step.action == Action.create_alias and step.params.get("keyId"):
            store = live.stores[step.store]
            assert step.params["keyId"] in {k.key_id for k in store.keys}, f"{step.id}: aliases another store's key"


def _closure(plan: Plan, step_id: str) -> set[str]:
    by_id = {s.id: s for s in plan.steps}
    seen: set[str] = set()
    todo = list(by_id[step_id].depends_on)
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(by_id[current].depends_on)
    return seen


def check_order(plan: Plan, live: LiveState, now: datetime) -> None:
    """(c) the plan, run in order, asks KMS only for what KMS allows at that point:
    no update of a disconnect-only field while connected, no delete_store before the store is
    disconnected or before its last key is gone, no create_key before the store is connected;
    and every destructive or connection-dependent step depends on what makes it legal, so a
    failure upstream skips it."""
    ids = [s.id for s in plan.steps]
    assert len(ids) == len(set(ids)), f"duplicate step ids: {ids}"
    state = {name: s.connection_state for name, s in live.stores.items()}
    keys = {name: {k.key_id: k for k in s.keys} for name, s in live.stores.items()}
    scheduled: dict[str, set[str]] = {}
    done: set[str] = set()
    steps_of: dict[str, list] = {}
    for step in plan.steps:
        for dep in step.depends_on:
            assert dep in done, f"{step.id} depends on {dep}, which is not an earlier step"
        steps_of.setdefault(step.store, []).append(step)
        now_state = state.get(step.store)
        a = step.action
        if a == Action.create_store:
            assert now_state is None, f"{step.id}: the store exists"
            state[step.store] = "DISCONNECTED"
        elif a == Action.connect_store:
            assert now_state in ("DISCONNECTED", "DISCONNECTING", "CONNECTING"), \
                f"{step.id}: connect while {now_state}"
            state[step.store] = "CONNECTED"
        elif a == Action.disconnect_store:
            assert now_state in ("CONNECTED", "CONNECTING", "FAILED"), f"{step.id}: disconnect while {now_state}"
            state[step.store] = "DISCONNECTED"
        elif a == Action.update_store:
            changes = set(step.params.get("changes", {}))
            offline = changes & (XKS_OFFLINE_FIELDS | {"clusterId"}) or "keyStorePassword" in step.params
            allowed = ("DISCONNECTED", "DISCONNECTING") if offline else ("CONNECTED", "DISCONNECTED", "DISCONNECTING")
            assert now_state in allowed, f"{step.id}: update of {sorted(changes)} while {now_state}"
        elif a == Action.create_key:
            assert now_state == "CONNECTED", f"{step.id}: create_key while {now_state}"
            connects = [s.id for s in steps_of[step.store] if s.action == Action.connect_store]
            if connects:
                assert connects[-1] in _closure(plan, step.id), f"{step.id} does not wait for {connects[-1]}"
        elif a == Action.schedule_key_deletion:
            key = keys[step.store][step.params["keyId"]]
            assert not key.pending_deletion, f"{step.id}: the key is already pending deletion"
            scheduled.setdefault(step.store, set()).add(key.key_id)
        elif a == Action.delete_store:
            assert now_state in ("DISCONNECTED", "DISCONNECTING"), f"{step.id}: delete while {now_state}"
            store_keys = keys.get(step.store, {})
            for key in store_keys.values():
                assert key.pending_deletion or key.key_id in scheduled.get(step.store, set()), \
                    f"{step.id}: key {key.key_id} would remain"
            must_wait = [s.id for s in steps_of[step.store] if s.action in (Action.schedule_key_deletion,
                                                                              Action.disconnect_store)]
            missing = set(must_wait) - _closure(plan, step.id)
            assert not missing, f"{step.id} does not depend on {sorted(missing)}"
            if store_keys:
                last = max([k.deletion_date for k in store_keys.values() if k.deletion_date] or [now])
                assert step.deferred_until is not None and step.deferred_until >= last, \
                    f"{step.id}: not deferred until the last key is gone ({last})"
            state[step.store] = "DELETED"
        done.add(step.id)


def check_no_duplicates(stores: list[dict], keys: list[dict]) -> None:
    names = [s["CustomKeyStoreName"] for s in stores]
    assert len(names) == len(set(names)), f"duplicate stores: {names}"
    xks = [(k["CustomKeyStoreId"], (k.get("XksKeyConfiguration") or {}).get("Id")) for k in keys
           if k.get("XksKeyConfiguration")]
    assert len(xks) == len(set(xks)), f"duplicate external keys: {xks}"
