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

from typing import Any, Callable

from botocore.exceptions import ClientError

from reconciler.plan.model import Step, ceil_seconds, iso


class QuarantineSteps:
    # provided by the Executor
    conn: Any
    call: Callable[..., dict]

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
        started = iso(ceil_seconds(self.conn.now()))
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
        message = f"quarantine started {started} on {len(tagged)} key(s)"
        if kept:
            message += f"; {len(kept)} key(s) already in quarantine keep their date"
        return message

    def _end_quarantine(self, step: Step) -> str:
        tag = step.params["tag"]
        for key_id in step.params["keyIds"]:
            self.call("UntagResource", "untag_resource", KeyId=key_id, TagKeys=[tag])
        return f"quarantine ended: {tag} removed from {len(step.params['keyIds'])} key(s)"
