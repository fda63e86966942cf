"""A fleet plan: one :class:`~reconciler.plan.model.Plan` per account and region, in one file with
one digest.

Each section is the plan of one target (``ACCOUNT/REGION``), exactly as a one-target run would
make it (its own manifests digest, live state and steps), so apply checks and runs each section
like a saved plan of its own; a target that could not be read (a role that cannot be assumed, the
wrong account) is a section with an error and no plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reconciler.plan.model import FORMAT_VERSION, Finding, Plan, iso, parse_iso, plan_digest

COUNTS = ("create", "update", "destroy", "deferred", "refused")


@dataclass(frozen=True)
class Section:
    account: str  # the account the target's credentials reached (or spec.account when they failed)
    region: str
    plan: Plan | None = None
    error: str | None = None

    @property
    def id(self) -> str:
        return f"{self.account}/{self.region}"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "account": self.account, "region": self.region}
        if self.error is not None:
            body["error"] = self.error
        if self.plan is not None:
            body["plan"] = self.plan.body()
        return body

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Section":
        plan = Plan.from_dict(data["plan"]) if data.get("plan") is not None else None
        return cls(account=data["account"], region=data["region"], plan=plan, error=data.get("error"))


@dataclass(frozen=True)
class FleetPlan:
    sections: tuple[Section, ...]
    created_at: datetime | None = None
    tool_version: str = ""
    manifest_paths: tuple[str, ...] = ()
    config_path: str | None = None  # reconciler.yaml, when there is one
    # the targets ``plan --target`` chose (ACCOUNT/REGION ids), empty when every target was planned:
    # applying the saved plan applies these, and checks that the manifests name no other among them
    selection: tuple[str, ...] = ()

    # what the commands ask of any plan
    @property
    def steps(self) -> tuple:
        return tuple(step for s in self.sections if s.plan for step in s.plan.steps)

    @property
    def refusals(self) -> tuple[Finding, ...]:
        return tuple(f for s in self.sections if s.plan for f in s.plan.refusals)

    @property
    def preflight_failures(self) -> tuple:
        return tuple(c for s in self.sections if s.plan for c in s.plan.preflight_failures)

    @property
    def failed(self) -> tuple[Section, ...]:
        return tuple(s for s in self.sections if s.error is not None)

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    def section(self, target_id: str) -> Section | None:
        return next((s for s in self.sections if s.id == target_id), None)

    def summary(self) -> dict[str, Any]:
        per = {s.id: (s.plan.summary() if s.plan else {"error": True}) for s in self.sections}
        total = {k: sum(c.get(k, 0) for c in per.values()) for k in COUNTS}
        total["failedTargets"] = len(self.failed)
        return {"total": total, "targets": per}

    def body(self) -> dict[str, Any]:
        return {
            "formatVersion": FORMAT_VERSION,
            "kind": "fleet",
            "createdAt": iso(self.created_at),
            "toolVersion": self.tool_version,
            "manifests": {"paths": list(self.manifest_paths), "config": self.config_path},
            "selection": list(self.selection) or None,
            "targets": [s.to_dict() for s in self.sections],
            "summary": self.summary(),
        }

    def to_dict(self) -> dict[str, Any]:
        body = self.body()
        body["planDigest"] = plan_digest(body)
        return body

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FleetPlan":
        manifests = data.get("manifests") or {}
        return cls(
            sections=tuple(Section.from_dict(s) for s in data["targets"]),
            created_at=parse_iso(data.get("createdAt")),
            tool_version=data.get("toolVersion", ""),
            manifest_paths=tuple(manifests.get("paths", [])),
            config_path=manifests.get("config"),
            selection=tuple(data.get("selection") or ()),
        )


def is_fleet_data(data: dict[str, Any]) -> bool:
    return data.get("kind") == "fleet"
