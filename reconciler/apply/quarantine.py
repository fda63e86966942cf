"""The quarantine's steps: a mixin of :class:`reconciler.apply.executor.Executor` (the only
writer to AWS), which provides ``call`` and ``conn``.

``start_quarantine`` tags each key of a decommissioned store with the date its quarantine began
(the store was disconnected just before, by the plan's previous step), so the date lives in AWS:
a run on another machine, or after the journal is lost, plans the same deletion dates.
``end_quarantine`` removes the tag once the store is declared present again.

Both are idempotent in effect: a key that already carries the tag keeps its date (a retried or
repeated run never moves the quarantine's start), and untagging a key without the tag changes
nothing.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any, Callable

from botocore.exceptions import ClientError

from reconciler.plan.model import Step, ceil_seconds, iso, parse_iso


class QuarantineSteps:
    # provided by the Executor
    conn: Any
    call: Callable[..., dict]
    _lock: threading.Lock
    _quarantine_shifts: dict[str, timedelta]  # store -> how much later its quarantine began than planned
    plan: Any

    def _quarantine_due(self, step: Step, planned: datetime | None) -> datetime | None:
        """When a step deferred by a quarantine this run began can run: the store's deferred dates
        move by how much later than the plan counted the quarantine began (:meth:`_shift`)."""
        with self._lock:
            shift = self._quarantine_shifts.get(step.store)
        return planned + shift if shift and planned else planned

    def _shift(self, store: str, started: datetime) -> timedelta:
        """The plan counted the store's quarantine from the moment it was made; it began when this
        run tagged the keys (later: a saved plan may be applied days after it was made)."""
        for other in self.plan.steps:
            quarantine = (other.params.get("quarantine") or {}) if other.store == store else {}
            if quarantine.get("ends") and not quarantine.get("started") and quarantine.get("days"):
                counted_from = parse_iso(quarantine["ends"]) - timedelta(days=int(quarantine["days"]))
                return max(timedelta(0), started - counted_from)
        return timedelta(0)

    def _tags(self, key_id: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        kwargs: dict[str, Any] = {"KeyId": key_id, "Limit": 50}
        while True:
            page = self.call("ListResourceTags", "list_resource_tags", **kwargs)
            tags.update({t["TagKey"]: t["TagValue"] for t in page.get("Tags", [])})
            if not page.get("Truncated"):
                return tags
            kwargs["Marker"] = page["NextMarker"]

    def _start_quarantine(self, step: Step) -> str:
        tag = step.params["tag"]
        started_at = ceil_seconds(self.conn.now())
        started = iso(started_at)
        tagged, kept = [], []
        for key_id in step.params["keyIds"]:
            try:
                existing = self._tags(key_id).get(tag)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NotFoundException":
                    continue  # deleted meanwhile: nothing to quarantine
                raise
            if existing:
                kept.append(key_id)
                continue
            self.call("TagResource", "tag_resource", KeyId=key_id, Tags=[{"TagKey": tag, "TagValue": started}])
            tagged.append(key_id)
        if tagged:
            shift = self._shift(step.store, started_at)  # once per store, not per deferred step
            with self._lock:
                self._quarantine_shifts[step.store] = shift
        message = f"quarantine started {started} on {len(tagged)} key(s)"
        if kept:
            message += f"; {len(kept)} key(s) already in quarantine keep their date"
        return message

    def _end_quarantine(self, step: Step) -> str:
        tag = step.params["tag"]
        for key_id in step.params["keyIds"]:
            self.call("UntagResource", "untag_resource", KeyId=key_id, TagKeys=[tag])
        return f"quarantine ended: {tag} removed from {len(step.params['keyIds'])} key(s)"
