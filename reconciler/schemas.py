"""The published JSON Schemas (docs/schemas/): the plan file and the apply event stream.

Both are generated from the code, never written by hand:

* the plan file's schema is inferred from what :meth:`Plan.to_dict` emits for plans that use
  every field (every action, every kind of finding, a store of each type in the observed state,
  values present and absent), then annotated with what the models enumerate (the actions, the
  finding kinds, the format version). A field the code adds to the plan file appears in the
  schema when it is regenerated;
* the event stream's schema comes from :data:`EVENTS`, the fields each event carries.

``python -m reconciler.schemas`` rewrites the files;
``tests/integrations/test_schemas.py`` fails when they differ from what this module generates, and
checks real plans and real apply events against them.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path("docs") / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
BASE_ID = "https://github.com/your-org/reconciler/blob/main/docs/schemas/"

# -- inference ------------------------------------------------------------------------------------

_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def infer(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {"type": "object", "properties": {k: infer(v) for k, v in value.items()},
                "required": sorted(value)}
    if isinstance(value, (list, tuple)):
        items = [infer(v) for v in value]
        merged: dict[str, Any] = {}
        for item in items:
            merged = merge(merged, item) if merged else item
        return {"type": "array", "items": merged} if merged else {"type": "array"}
    return {"type": _TYPES[type(value)]}


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One schema that both ``a`` and ``b`` satisfy (types united, properties merged, a property
    required only where both require it)."""
    if not a:
        return b
    if not b:
        return a
    types = sorted(set(_types(a)) | set(_types(b)), key=["object", "array", "string", "integer", "number",
                                                         "boolean", "null"].index)
    if "integer" in types and "number" in types:
        types.remove("integer")
    out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    if "properties" in a or "properties" in b:
        pa, pb = a.get("properties", {}), b.get("properties", {})
        out["properties"] = {k: merge(pa.get(k, {}), pb.get(k, {})) for k in [*pa, *[k for k in pb if k not in pa]]}
        ra = set(a.get("required", pa)) if "object" in _types(a) else set(pb)
        rb = set(b.get("required", pb)) if "object" in _types(b) else set(pa)
        out["required"] = sorted(ra & rb)
    if "items" in a or "items" in b:
        out["items"] = merge(a.get("items", {}), b.get("items", {}))
    return out


def _at(schema: dict[str, Any], *path: str) -> dict[str, Any] | None:
    node: Any = schema
    for part in path:
        node = (node.get("items") if part == "[]" else node.get("properties", {}).get(part)) if node else None
    return node


def _annotate(schema: dict[str, Any], path: tuple[str, ...], **extra: Any) -> None:
    node = _at(schema, *path)
    if node is not None:
        node.update(extra)


# -- the plan file --------------------------------------------------------------------------------

FINDING_KINDS = ("unmanaged_store", "drift_key", "refused", "note", "warning")

def sample_plans() -> list[Any]:
    """Plans that between them use every field the plan file has, with values present and absent."""
    from reconciler.live.model import LiveKey, LiveState, LiveStore, LiveXks
    from reconciler.plan.model import Action, Finding, Plan, PreflightCheck, Step

    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    xks = LiveStore(id="cks-1", name="payments-xks", type="EXTERNAL_KEY_STORE", connection_state="FAILED",
                    connection_error_code="XKS_PROXY_NOT_REACHABLE", creation_date=now,
                    xks=LiveXks("VPC_ENDPOINT_SERVICE", "https://xks.example.com", "/kms/xks/v1", "AKIA",
                                "com.amazonaws.vpce.us-east-1.vpce-svc-1", "111122223333"),
                    keys=(LiveKey("k1", "arn:k1", "cks-1", "EXTERNAL_KEY_STORE", "PendingDeletion", False, "d",
                                  deletion_date=now, xks_key_id="x1", aliases=("alias/a",), tags=(("t", "v"),)),))
    hsm = LiveStore(id="cks-2", name="records", type="AWS_CLOUDHSM", connection_state="CONNECTED",
                    cloudhsm_cluster_id="cluster-1", keys=(LiveKey("k2", "arn:k2", "cks-2", "AWS_CLOUDHSM",
                                                                   "Enabled", True),))
    live = LiveState(region="us-east-1", stores={"payments-xks": xks, "records": hsm}, aliases={"alias/a": "k1"})
    steps = tuple(Step(id=f"s:{action.value}", action=action, store="payments-xks", reason="why",
                       key="x1" if n % 2 else None, params={"name": "value", "count": 1} if n % 2 else {},
                       depends_on=("s:create_store",) if n % 2 else (),
                       deferred_until=now + timedelta(days=7) if action.destructive else None)
                  for n, action in enumerate(Action))
    findings = tuple(Finding(kind=kind, store="payments-xks", message="what", key="x1" if n % 2 else None)
                     for n, kind in enumerate(FINDING_KINDS))
    rescue = [{"store": "payments-xks", "today": "2030-01-01T00:00:00Z", "keys": [
        {"key": "x1", "keyId": "k1", "deletionDate": "2030-01-22T00:00:00Z", "scheduled": False,
         "rescuedByThisPlan": False, "rescue": "set spec.state: present and declare the key, then apply"}],
        "quarantine": {"start": "2030-01-01T00:00:00Z", "end": "2030-01-15T00:00:00Z"},
        "storeDeletion": "2030-01-22T00:00:00Z"}, {"store": "records", "today": "2030-01-01T00:00:00Z", "keys": []}]
    full = Plan(region="us-east-1", steps=steps, findings=findings, created_at=now, tool_version="0.1.0",
                manifests_digest="sha256:0", live_digest="sha256:1", manifest_paths=("manifests",),
                managed_stores=("payments-xks",), observed=live.to_dict(),
                target={"account": "111122223333", "region": "us-east-1", "endpoint": "https://kms.example.com",
                        "sandbox": "/tmp/sandbox"}, allow_recent_use=True, rescue_window=rescue,
                preflight=(PreflightCheck("payments-xks", "health", "fail", "what", code="INVALID_CREDENTIALS",
                                          exception="XksProxyIncorrectAuthenticationCredentialException", fix="how"),
                           PreflightCheck("payments-xks", "key", "ok", "what", key="x1")))
    public = LiveStore(id="cks-3", name="public", type="EXTERNAL_KEY_STORE", connection_state="DISCONNECTED",
                       xks=LiveXks("PUBLIC_ENDPOINT", "https://xks.example.com", "/kms/xks/v1"),
                       keys=(LiveKey("k3", "arn:k3", "cks-3", "EXTERNAL_KEY_STORE", "Unavailable", False),))
    empty = Plan(region="us-east-1", steps=(), observed=LiveState(region="us-east-1", stores={"public": public}).to_dict(),
                 target={"account": None, "region": "us-east-1", "endpoint": None, "sandbox": None})
    return [full, empty]


def plan_schema() -> dict[str, Any]:
    from reconciler.plan.model import FORMAT_VERSION, Action

    schema: dict[str, Any] = {}
    for plan in sample_plans():
        schema = merge(schema, infer(plan.to_dict()))
    for step_param in ("params",):  # a step's params depend on its action: any JSON values
        node = _at(schema, "steps", "[]", step_param)
        if node is not None:
            node.clear()
            node.update({"type": "object", "description": "the values the step sends, by KMS parameter; "
                         "secrets appear as \"(sensitive)\""})
    for path in (("liveState", "observed", "stores", "[]", "keys", "[]", "tags"),):
        node = _at(schema, *path)
        if node is not None:
            node.clear()
            node.update({"type": "object", "additionalProperties": {"type": "string"}})
    node = _at(schema, "liveState", "observed", "aliases")
    if node is not None:
        node.clear()
        node.update({"type": "object", "additionalProperties": {"type": "string"},
                     "description": "alias name -> key id"})
    _annotate(schema, ("formatVersion",), const=FORMAT_VERSION)
    _annotate(schema, ("steps", "[]", "action"), enum=[a.value for a in Action])
    _annotate(schema, ("findings", "[]", "kind"), enum=list(FINDING_KINDS))
    for path in (("rescueWindow", "[]", "today"), ("rescueWindow", "[]", "storeDeletion"),
                 ("rescueWindow", "[]", "quarantine", "start"), ("rescueWindow", "[]", "quarantine", "end"),
                 ("rescueWindow", "[]", "keys", "[]", "deletionDate")):
        _annotate(schema, path, format="date-time")
    _annotate(schema, ("preflight",), description="the checks of the XKS proxies the steps make KMS call "
              "(present when a step needed one): docs/xks-proxy.md")
    _annotate(schema, ("preflight", "[]", "status"), enum=["ok", "warn", "fail", "not_checked"])
    _annotate(schema, ("preflight", "[]", "check"),
              enum=["dns", "tls", "health", "credential", "ekm", "latency", "key", "proxy"])
    _annotate(schema, ("planDigest",), pattern="^sha256:[0-9a-f]{64}$",
              description="sha256 of the canonical JSON of every other member; apply refuses a plan whose "
                          "digest does not match")
    _annotate(schema, ("createdAt",), format="date-time")
    _annotate(schema, ("steps", "[]", "deferredUntil"), format="date-time")
    return {"$schema": DIALECT, "$id": BASE_ID + "plan.schema.json", "title": "reconciler plan file",
            "description": "What 'reconciler plan --out FILE' writes and 'plan --format json' prints; "
                           "generated from the code by python -m reconciler.schemas.", **schema}


# -- the apply event stream -----------------------------------------------------------------------

_STEP = {"step": "string", "action": "string", "store": "string", "key": ["string", "null"]}
_OUTCOME = {**_STEP, "message": "string", "errorCode": ["string", "null"], "elapsed": "number",
            "deferredUntil": ["string", "null"]}
# event -> (its fields -> JSON type, the fields it always has)
EVENTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "run-start": ({"plan": "string", "region": "string", "account": "string", "steps": "integer",
                   "manifests": "array"},
                  ("plan", "region", "steps", "manifests")),
    "start": (_STEP, ("step", "action", "store")),
    "wait": ({"step": "string", "state": "string", "waited": "number"}, ("step", "state", "waited")),
    "ok": (_OUTCOME, ("step", "action", "store", "message")),
    "failed": (_OUTCOME, ("step", "action", "store", "message")),
    "skipped": ({**_STEP, "message": "string"}, ("step", "action", "store", "message")),
    "deferred": (_OUTCOME, ("step", "action", "store", "message")),
    "target-end": ({"target": "string", "exitCode": "integer", "message": ["string", "null"]},
                   ("target", "exitCode")),
    "run-end": ({"ok": "integer", "failed": "integer", "skipped": "integer", "deferred": "integer",
                 "rerunAfter": ["string", "null"], "finishAfter": "string", "interrupted": "boolean"},
                ("ok", "failed", "skipped", "deferred", "rerunAfter")),
}


def event_schema() -> dict[str, Any]:
    variants = []
    for name, (fields, required) in EVENTS.items():
        properties: dict[str, Any] = {"event": {"const": name}, "time": {"type": "string", "format": "date-time"},
                                      "run": {"type": "string"}}
        properties.update({k: {"type": v} for k, v in fields.items()})
        variants.append({"type": "object", "properties": properties, "additionalProperties": False,
                         "required": ["event", "run", "time", *required]})
    return {"$schema": DIALECT, "$id": BASE_ID + "apply-event.schema.json", "title": "reconciler apply event",
            "description": "One line of 'reconciler apply --format json', and of the journal (plans/journal.jsonl); "
                           "generated from the code by python -m reconciler.schemas.",
            "oneOf": variants}


SCHEMAS = {"plan.schema.json": plan_schema, "apply-event.schema.json": event_schema}


def render(make) -> str:
    return json.dumps(make(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write docs/schemas/*.json (``--check``: exit 1 if one is out of date)."""
    args = sys.argv[1:] if argv is None else argv
    directory = Path(args[-1]) if args and not args[-1].startswith("-") else SCHEMA_DIR
    stale = []
    for name, make in SCHEMAS.items():
        path = directory / name
        text = render(make)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if "--check" not in args:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"{path}: written")
    if "--check" in args and stale:
        print(f"out of date: {', '.join(map(str, stale))}; run: python -m reconciler.schemas", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
