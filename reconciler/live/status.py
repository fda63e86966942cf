"""``reconciler status``: every live custom key store at a glance.

One row per store in the region: name, id, type, connection state (with its ConnectionErrorCode),
its keys counted by key state, the earliest DeletionDate of a key pending deletion, and, when
manifests are given, whether a manifest manages the store. Built from the same
:class:`~reconciler.live.model.LiveState` that ``plan`` reads; it never changes anything.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.aws.cli_hint import aws_cli
from reconciler.aws.connection_errors import fix_for
from reconciler.display import printable
from reconciler.live.model import QUARANTINE_TAG, LiveKey, LiveState
from reconciler.display import ceil_seconds

KEY_STATE_ORDER = ("Enabled", "Disabled", "Unavailable", "PendingDeletion")
TYPE_LABEL = {"EXTERNAL_KEY_STORE": "XKS", "AWS_CLOUDHSM": "CLOUDHSM"}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class StoreStatus:
    name: str
    id: str
    type: str
    connection_state: str
    connection_error_code: str | None
    key_states: dict[str, int]
    earliest_deletion: datetime | None
    # "managed" | "decommissioning" (its manifest says state: absent) | "unmanaged" | None (no manifests given)
    management: str | None
    # keys pending deletion: {"key", "keyId", "deletionDate", "rescue"}; and a quarantine's start
    rescue: tuple[dict[str, Any], ...] = ()
    quarantine_since: str | None = None

    @property
    def key_count(self) -> int:
        return sum(self.key_states.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "type": self.type,
            "connectionState": self.connection_state,
            "connectionErrorCode": self.connection_error_code,
            "fix": fix_for(self.connection_error_code) if self.connection_error_code else None,
            "keys": self.key_count,
            "keyStates": self.key_states,
            "earliestDeletionDate": _iso(self.earliest_deletion),
            "managed": None if self.management is None else self.management != "unmanaged",
            "management": self.management,
            "pendingDeletion": list(self.rescue),
            "quarantineStarted": self.quarantine_since,
        }


@dataclass(frozen=True)
class StatusReport:
    region: str
    read_at: datetime | None
    stores: tuple[StoreStatus, ...]
    manifests_given: bool = False
    # stores the manifests declare present that KMS does not have (yet)
    not_created: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "readAt": _iso(self.read_at),
            "stores": [s.to_dict() for s in self.stores],
            "declaredNotCreated": list(self.not_created) if self.manifests_given else None,
        }


@dataclass(frozen=True)
class FleetStatus:
    """``status`` of a fleet: each target (``ACCOUNT/REGION``) with its report, or why it could not
    be read. ``to_dict()`` is ``reconciler status --format json`` of a fleet."""

    targets: tuple[tuple[str, "StatusReport | str"], ...]

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(ident for ident, report in self.targets if isinstance(report, str))

    def to_dict(self) -> dict[str, Any]:
        return {"targets": [{"id": ident, **({"error": report} if isinstance(report, str) else
                                             {"status": report.to_dict()})}
                            for ident, report in self.targets]}


def fleet_status(results: list[tuple[str, dict[str, str] | None, Any]], where: dict[str, Any] | None = None
                 ) -> FleetStatus:
    """The :class:`FleetStatus` of what a fleet read gave: per target, its declared stores and its
    live state, or the error that kept it from being read."""
    return FleetStatus(tuple((ident, live if isinstance(live, str) else build_status(live, declared, where))
                             for ident, declared, live in results))


def _ordered_states(counts: Counter[str]) -> dict[str, int]:
    known = [s for s in KEY_STATE_ORDER if counts.get(s)]
    others = sorted(s for s in counts if s not in KEY_STATE_ORDER and counts[s])
    return {s: counts[s] for s in known + others}


def build_status(live: LiveState, declared: dict[str, str] | None = None,
                 where: dict[str, Any] | None = None) -> StatusReport:
    """``declared``: store name -> its manifest's spec.state (present | absent), or None when no
    manifests were given."""
    rows = []
    for name, store in sorted(live.stores.items()):
        counts = Counter(k.key_state for k in store.keys)
        dates = [k.deletion_date for k in store.keys if k.pending_deletion and k.deletion_date]
        if declared is None:
            management = None
        elif name not in declared:
            management = "unmanaged"
        else:
            management = "decommissioning" if declared[name] == "absent" else "managed"
        starts = sorted(v for k in store.keys if (v := k.tag_dict.get(QUARANTINE_TAG)))
        rows.append(StoreStatus(
            name=name, id=store.id, type=store.type, connection_state=store.connection_state,
            connection_error_code=store.connection_error_code if store.connection_state == "FAILED" else None,
            key_states=_ordered_states(counts), earliest_deletion=ceil_seconds(min(dates)) if dates else None,
            management=management, quarantine_since=starts[0] if starts else None,
            rescue=tuple({"key": k.xks_key_id or (k.aliases[0] if k.aliases else k.key_id), "keyId": k.key_id,
                          "deletionDate": _iso(ceil_seconds(k.deletion_date)) if k.deletion_date else None,
                          "rescue": _rescue(k, management, live.region, where)}
                         for k in sorted(store.keys, key=lambda k: k.key_id) if k.pending_deletion),
        ))
    missing = tuple(sorted(n for n, state in (declared or {}).items() if state == "present" and n not in live.stores))
    return StatusReport(region=live.region, read_at=live.read_at, stores=tuple(rows),
                        manifests_given=declared is not None, not_created=missing)


def _rescue(key: LiveKey, management: str | None, region: str, where: dict[str, Any] | None) -> str:
    """What rescues a key pending deletion: the manifest change (the next apply cancels the
    deletion of a declared key), or, for a store no manifest names, KMS's own command."""
    declare = f"xksKeyId: {key.xks_key_id}" if key.xks_key_id else (f"alias: {key.aliases[0]}" if key.aliases else None)
    command = aws_cli(["kms", "cancel-key-deletion", "--key-id", key.key_id], region, where)
    if management in ("managed", "decommissioning") and declare:
        if management == "decommissioning":
            return f"set spec.state: present and declare the key under spec.keys ({declare}) in the store's manifest, then apply"
        return (f"apply, if the store's manifest declares the key ({declare}) under spec.keys; else declare it there, "
                "then apply (plan shows whether it rescues it)")
    return command


def _connection(row: StoreStatus) -> str:
    if row.connection_error_code:
        return f"{row.connection_state} ({row.connection_error_code})"
    return row.connection_state


def _keys(row: StoreStatus) -> str:
    if not row.key_states:
        return "0"
    return ", ".join(f"{n} {state}" for state, n in row.key_states.items())


def render_text(report: StatusReport) -> str:
    read_at = report.read_at.replace(microsecond=0) if report.read_at else None
    head = f"Region {report.region}, live state read {_iso(read_at) or '?'}"
    if not report.stores:
        lines = [head, "", "No custom key stores in this region."]
    else:
        columns = ["NAME", "ID", "TYPE", "CONNECTION", "KEYS", "NEXT DELETION"]
        if report.manifests_given:
            columns.append("MANAGED")
        table = []
        for row in report.stores:
            # rounded up, as every date the tool prints: the key is not gone before it
            when = ceil_seconds(row.earliest_deletion) if row.earliest_deletion else None
            cells = [printable(row.name), printable(row.id), TYPE_LABEL.get(row.type, row.type), _connection(row),
                     _keys(row),
                     _iso(when) or "-"]
            if report.manifests_given:
                cells.append({"managed": "yes", "decommissioning": "yes (absent)"}.get(row.management or "", "no"))
            table.append(cells)
        widths = [max(len(columns[i]), *(len(r[i]) for r in table)) for i in range(len(columns))]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        lines = [head, "", fmt(columns)] + [fmt(r) for r in table]
        failed = [r for r in report.stores if r.connection_error_code]
        if failed:
            lines += ["", "Connection errors:"]
            lines += [f"  {r.name}: {r.connection_error_code}: {fix_for(r.connection_error_code)}" for r in failed]
        rescue = [(r, k) for r in report.stores for k in r.rescue]
        quarantined = [r for r in report.stores if r.quarantine_since]
        if rescue or quarantined:
            lines += ["", "Rescue window:"]
            lines += [f"  {r.name}: in quarantine since {r.quarantine_since} (disconnected; keys recoverable): "
                      "set spec.state: present and apply to end it" for r in quarantined]
            lines += [f"  {r.name} / {k['key']}: deleted on {k['deletionDate']}; rescue: {k['rescue']}"
                      for r, k in rescue]
        unmanaged = [r.name for r in report.stores if r.management == "unmanaged"]
        if unmanaged:
            lines += ["", f"{len(unmanaged)} store(s) in no manifest (plan and apply never change them): "
                      + ", ".join(unmanaged)]
    if report.not_created:
        lines += ["", "Declared in the manifests but not in KMS (apply creates them): " + ", ".join(report.not_created)]
    # names come from AWS: every line is made printable (control characters shown as escapes)
    return "\n".join(printable(line) for line in lines) + "\n"


def render_json(report: StatusReport) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


RENDERERS = {"text": render_text, "json": render_json}
