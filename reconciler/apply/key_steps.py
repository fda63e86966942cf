"""The executor's steps on keys: create (safe to retry: it looks for what a lost response made),
aliases, updates, scheduling and cancelling deletion, and the dates KMS gave the keys it scheduled.

A mixin of :class:`reconciler.apply.executor.Executor`, which holds the state they share (the
calls, the lock, the keys this run knows)."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any, Callable

from botocore.exceptions import ClientError

from reconciler.apply.lookups import KeyLookups
from reconciler.apply.outcomes import StepError
from reconciler.apply.retries import error_code
from reconciler.live.model import aware_utc
from reconciler.plan.matching import MANAGED_TAG
from reconciler.plan.model import Step, ceil_seconds, iso


class KeySteps:
    # provided by the Executor
    _lock: threading.Lock
    _key_ids: dict[tuple[str, str], str]
    _key_stores: dict[str, str]
    _deletion_dates: dict[str, dict[str, datetime]]
    lookups: KeyLookups
    call: Callable[..., dict]
    store_id: Callable[[str], str]
    create_with_lookup: Callable[..., tuple[dict, bool]]
    _quarantine_due: Callable[[Step, datetime | None], datetime | None]

    def _find_key(self, store: str, store_id: str, ident: str, xks_key_id: str | None) -> str | None:
        """Find a key of the store by XksKeyId, or by the tag this tool sets on keys it creates
        (the keys this run created for other steps are not it)."""
        with self._lock:
            mine = {key_id for (s, _), key_id in self._key_ids.items() if s == store}
        for metas in self.lookups.scan(store_id, skip=mine):
            candidates = [m for m in metas if m.get("KeyState") != "PendingDeletion"]  # never what this run created
            if xks_key_id:
                found = [m["KeyId"] for m in candidates if (m.get("XksKeyConfiguration") or {}).get("Id") == xks_key_id]
            else:
                tags = self.lookups.tags_many(m["KeyId"] for m in candidates)
                found = [m["KeyId"] for m in candidates if tags[m["KeyId"]].get(MANAGED_TAG) == ident]
            if found:
                return found[0]
        return None

    def _create_key(self, step: Step) -> str:
        p = step.params
        store_id = self.store_id(step.store)
        tags = [{"TagKey": k, "TagValue": v} for k, v in sorted(p.get("tags", {}).items())]
        tags.append({"TagKey": MANAGED_TAG, "TagValue": step.key})
        kwargs: dict[str, Any] = {"CustomKeyStoreId": store_id, "Origin": p["origin"],
                                  "KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT",
                                  "Description": p.get("description", ""), "Tags": tags}
        if p.get("xksKeyId"):
            kwargs["XksKeyId"] = p["xksKeyId"]
        def lookup():
            key_id = self._find_key(step.store, store_id, step.key, p.get("xksKeyId"))
            return {"KeyMetadata": {"KeyId": key_id}} if key_id else None

        result, created = self.create_with_lookup("CreateKey", "create_key", lookup, kwargs, look_first=False)
        key_id = result["KeyMetadata"]["KeyId"]
        with self._lock:
            self._key_ids[(step.store, step.key)] = key_id
            self._key_stores[key_id] = store_id
        if not p.get("enabled", True):
            self.call("DisableKey", "disable_key", KeyId=key_id)
        return f"created {key_id}" if created else f"found {key_id} (created by an earlier attempt)"

    def _key_id(self, step: Step, ident: str | None = None) -> str:
        if step.params.get("keyId"):
            return step.params["keyId"]
        with self._lock:
            key_id = self._key_ids.get((step.store, ident or step.key))
        if key_id is None:
            key_id = self._find_key(step.store, self.store_id(step.store), ident or step.key,
                                    ident if step.params.get("origin") == "EXTERNAL_KEY_STORE" else None)
        if key_id is None:
            raise StepError(f"cannot find key {ident or step.key} in store {step.store}", "NotFoundException")
        return key_id

    def _create_alias(self, step: Step) -> str:
        p = step.params
        key_id = p.get("keyId") or self._key_id(step, p["targetKey"])
        if p.get("update"):
            self.call("UpdateAlias", "update_alias", AliasName=p["alias"], TargetKeyId=key_id)
            return f"{p['alias']} -> {key_id}"
        try:
            self.call("CreateAlias", "create_alias", AliasName=p["alias"], TargetKeyId=key_id)
        except ClientError as exc:
            if error_code(exc) != "AlreadyExistsException":
                raise
            aliases = self.call("ListAliases", "list_aliases", KeyId=key_id).get("Aliases", [])
            if not any(a["AliasName"] == p["alias"] for a in aliases):
                raise
        return f"{p['alias']} -> {key_id}"

    def _update_key(self, step: Step) -> str:
        p = step.params
        key_id = p["keyId"]
        done = []
        if "enabled" in p:
            if p["enabled"]:
                self.call("EnableKey", "enable_key", KeyId=key_id)
            else:
                self.call("DisableKey", "disable_key", KeyId=key_id)
            done.append("enabled" if p["enabled"] else "disabled")
        if "description" in p:
            self.call("UpdateKeyDescription", "update_key_description", KeyId=key_id, Description=p["description"])
            done.append("description")
        if p.get("setTags"):
            self.call("TagResource", "tag_resource", KeyId=key_id,
                      Tags=[{"TagKey": k, "TagValue": v} for k, v in sorted(p["setTags"].items())])
            done.append("tags set")
        if p.get("removeTags"):
            self.call("UntagResource", "untag_resource", KeyId=key_id, TagKeys=list(p["removeTags"]))
            done.append("tags removed")
        return ", ".join(done)

    def _schedule_key_deletion(self, step: Step) -> str:
        p = step.params
        try:
            result = self.call("ScheduleKeyDeletion", "schedule_key_deletion", KeyId=p["keyId"],
                               PendingWindowInDays=int(p["pendingWindowInDays"]))
        except ClientError as exc:
            if error_code(exc) == "KMSInvalidStateException":
                meta = self.call("DescribeKey", "describe_key", KeyId=p["keyId"])["KeyMetadata"]
                if meta.get("KeyState") == "PendingDeletion":
                    when = aware_utc(meta.get("DeletionDate"))
                    self._note_deletion(step.store, p["keyId"], when)
                    return f"already pending deletion until {iso(ceil_seconds(when) if when else None)}"
            raise
        when = aware_utc(result.get("DeletionDate"))
        self._note_deletion(step.store, p["keyId"], when)
        return f"pending deletion until {iso(ceil_seconds(when) if when else None)}"

    def _note_deletion(self, store: str, key_id: str, when: datetime | None) -> None:
        if when is not None:
            with self._lock:
                self._deletion_dates.setdefault(store, {})[key_id] = when

    def _deferred_until(self, step: Step, planned: datetime | None) -> datetime | None:
        """When a deferred step can run: moved by the quarantine this run began (it began later than
        the plan counted), and for delete_store, the latest DeletionDate of the store's keys,
        counting the dates KMS gave the keys this run scheduled (a saved plan applied days after it
        was made schedules them later than the plan could know)."""
        planned = self._quarantine_due(step, planned)
        if step.action.value != "delete_store":
            return planned
        with self._lock:
            dates = list(self._deletion_dates.get(step.store, {}).values())
        dates += [planned] if planned else []
        return ceil_seconds(max(dates)) if dates else None

    def _cancel_key_deletion(self, step: Step) -> str:
        try:
            self.call("CancelKeyDeletion", "cancel_key_deletion", KeyId=step.params["keyId"])
        except ClientError as exc:
            if error_code(exc) != "KMSInvalidStateException":
                raise
            meta = self.call("DescribeKey", "describe_key", KeyId=step.params["keyId"])["KeyMetadata"]
            if meta.get("KeyState") == "PendingDeletion":
                raise
            return f"not pending deletion ({meta.get('KeyState')})"
        return "rescued: deletion cancelled, the key is Disabled until enabled"
