"""The plan: a typed, ordered list of steps, separate from how it is rendered or executed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from reconciler.display import ceil_seconds, iso, parse_iso  # noqa: F401  (the plan's date format)

# 2: the plan records its target (account, region, endpoint or sandbox) and apply refuses another
FORMAT_VERSION = 2
SENSITIVE = "(sensitive)"


class Action(str, Enum):
    create_store = "create_store"
    update_store = "update_store"
    connect_store = "connect_store"
    disconnect_store = "disconnect_store"
    delete_store = "delete_store"
    create_key = "create_key"
    update_key = "update_key"
    create_alias = "create_alias"
    schedule_key_deletion = "schedule_key_deletion"
    cancel_key_deletion = "cancel_key_deletion"
    start_quarantine = "start_quarantine"
    end_quarantine = "end_quarantine"

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def destructive(self) -> bool:
        return self in (Action.delete_store, Action.schedule_key_deletion)


_SYMBOLS = {
    Action.create_store: "+",
    Action.create_key: "+",
    Action.create_alias: "+",
    Action.update_store: "~",
    Action.update_key: "~",
    Action.connect_store: "~",
    Action.disconnect_store: "~",
    Action.cancel_key_deletion: "~",
    Action.start_quarantine: "~",
    Action.end_quarantine: "~",
    Action.delete_store: "-",
    Action.schedule_key_deletion: "-",
}


@dataclass(frozen=True)
class Step:
    id: str
    action: Action
    store: str
    reason: str
    key: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    deferred_until: datetime | None = None

    @property
    def destructive(self) -> bool:
        return self.action.destructive

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action.value,
            "store": self.store,
            "key": self.key,
            "params": self.params,
            "dependsOn": list(self.depends_on),
            "reason": self.reason,
            "destructive": self.destructive,
            "deferredUntil": iso(self.deferred_until),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Step":
        return cls(
            id=data["id"],
            action=Action(data["action"]),
            store=data["store"],
            key=data.get("key"),
            params=dict(data.get("params") or {}),
            depends_on=tuple(data.get("dependsOn") or ()),
            reason=data.get("reason", ""),
            deferred_until=parse_iso(data.get("deferredUntil")),
        )


@dataclass(frozen=True)
class Finding:
    """Something the plan reports but does not change: unmanaged stores, drift, refusals, notes."""

    kind: str  # unmanaged_store | drift_key | refused | note
    store: str
    message: str
    key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "store": self.store, "key": self.key, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Finding":
        return cls(kind=data["kind"], store=data["store"], key=data.get("key"), message=data["message"])


@dataclass(frozen=True)
class PreflightCheck:
    """One check of an XKS proxy made before the plan's steps (reconciler.preflight): an
    annotation of the plan, computed outside the planner."""

    store: str
    check: str  # dns | tls | health | credential | latency | ekm | key
    status: str  # ok | warn | fail | not_checked
    message: str
    key: str | None = None
    code: str | None = None  # the ConnectionErrorCode a connection would end with
    exception: str | None = None  # the exception Create/UpdateCustomKeyStore or CreateKey would raise
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "check": self.check, "status": self.status, "key": self.key,
                "message": self.message, "connectionErrorCode": self.code, "exception": self.exception,
                "fix": self.fix}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PreflightCheck":
        return cls(store=data["store"], check=data["check"], status=data["status"], key=data.get("key"),
                   message=data["message"], code=data.get("connectionErrorCode"), exception=data.get("exception"),
                   fix=data.get("fix"))


@dataclass(frozen=True)
class Plan:
    region: str
    steps: tuple[Step, ...]
    findings: tuple[Finding, ...] = ()
    created_at: datetime | None = None
    tool_version: str = ""
    manifests_digest: str = ""
    live_digest: str = ""
    manifest_paths: tuple[str, ...] = ()
    managed_stores: tuple[str, ...] = ()
    observed: dict[str, Any] = field(default_factory=dict)  # the live state the plan was made from
    # where the live state was read: {"account", "region", "endpoint", "sandbox"} (Connection.identity)
    target: dict[str, Any] = field(default_factory=dict)
    # --allow-recent-use: keys CloudTrail shows in use may be scheduled for deletion
    allow_recent_use: bool = False
    # per decommission or key pending deletion: deletion dates, how to rescue, the schedule
    # (reconciler.plan.rescue.schedules)
    rescue_window: list[dict[str, Any]] = field(default_factory=list)
    # the proxy checks made before the plan's steps (empty: no store needed one)
    preflight: tuple[PreflightCheck, ...] = ()

    @property
    def preflight_failures(self) -> tuple[PreflightCheck, ...]:
        return tuple(c for c in self.preflight if c.status == "fail")

    @property
    def refusals(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind == "refused")

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    def summary(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "destroy": 0, "deferred": 0}
        for step in self.steps:
            if step.deferred_until is not None:
                counts["deferred"] += 1
            counts[{"+": "create", "~": "update", "-": "destroy"}[step.action.symbol]] += 1
        counts["refused"] = len(self.refusals)
        return counts

    def body(self) -> dict[str, Any]:
        return {
            "formatVersion": FORMAT_VERSION,
            "createdAt": iso(self.created_at),
            "toolVersion": self.tool_version,
            "region": self.region,
            "target": self.target,
            "manifests": {"digest": self.manifests_digest, "paths": list(self.manifest_paths)},
            "liveState": {"digest": self.live_digest, "stores": list(self.managed_stores),
                          "observed": self.observed},
            **({"options": {"allowRecentUse": True}} if self.allow_recent_use else {}),
            "steps": [s.to_dict() for s in self.steps],
            "rescueWindow": self.rescue_window,
            "findings": [f.to_dict() for f in self.findings],
            **({"preflight": [c.to_dict() for c in self.preflight]} if self.preflight else {}),
            "summary": self.summary(),
        }

    def to_dict(self) -> dict[str, Any]:
        body = self.body()
        body["planDigest"] = plan_digest(body)
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Plan":
        live = data.get("liveState") or {}
        manifests = data.get("manifests") or {}
        return cls(
            region=data["region"],
            steps=tuple(Step.from_dict(s) for s in data.get("steps", [])),
            findings=tuple(Finding.from_dict(f) for f in data.get("findings", [])),
            created_at=parse_iso(data.get("createdAt")),
            tool_version=data.get("toolVersion", ""),
            manifests_digest=manifests.get("digest", ""),
            manifest_paths=tuple(manifests.get("paths", [])),
            live_digest=live.get("digest", ""),
            managed_stores=tuple(live.get("stores", [])),
            observed=live.get("observed") or {},
            target=dict(data.get("target") or {}),
            allow_recent_use=bool((data.get("options") or {}).get("allowRecentUse")),
            rescue_window=list(data.get("rescueWindow") or []),
            preflight=tuple(PreflightCheck.from_dict(c) for c in data.get("preflight") or ()),
        )


def plan_digest(body: dict[str, Any]) -> str:
    content = {k: v for k, v in body.items() if k != "planDigest"}
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode()).hexdigest()
