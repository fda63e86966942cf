"""Which stores a plan needs checked, and the run of their checks (see the package docstring)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional
from urllib.parse import urlsplit

from reconciler.errors import UserError
from reconciler.plan.desired import DesiredStore
from reconciler.plan.model import Action, Plan, PreflightCheck, SENSITIVE

PROXY_FIELDS = {"uriEndpoint", "uriPath", "accessKeyId"}


def _triggers(plan: Plan) -> dict[str, dict[str, Any]]:
    """Store name -> what its steps do that makes KMS call its proxy."""
    found: dict[str, dict[str, Any]] = {}
    for step in plan.steps:
        entry = found.setdefault(step.store, {"store": False, "rotation": False, "creating": set()})
        if step.action in (Action.create_store, Action.connect_store):
            entry["store"] = True
        elif step.action == Action.update_store:
            changes = set((step.params.get("changes") or {}))
            resent = step.params.get("secretAccessKey") == SENSITIVE
            if changes & PROXY_FIELDS or resent:
                entry["store"] = True
                entry["rotation"] = entry["rotation"] or "accessKeyId" in changes or resent
        elif step.action == Action.create_key and step.key:
            entry["creating"].add(step.key)
    return {name: e for name, e in found.items() if e["store"] or e["creating"]}


def stores_to_check(plan: Plan, desired: Any) -> list[tuple[DesiredStore, dict[str, Any]]]:
    """The XKS stores (present) whose steps make KMS call their proxy, with what triggers it."""
    triggers = _triggers(plan)
    if not triggers:
        return []
    return [(store, triggers[store.name]) for store in desired.state.stores
            if store.name in triggers and store.xks is not None and store.state == "present"]


def annotate(plan: Plan, desired: Any, *, conn: Any = None, target: Any = None) -> Plan:
    """The plan with its preflight results; the plan itself when no store needs a check.

    ``conn`` (an open connection) or ``target`` (to open one) says whether the proxies are the
    sandbox's (its registry) or reached through DNS.
    """
    subjects = stores_to_check(plan, desired)
    if not subjects:
        return plan
    from reconciler.preflight.routes import Routes, sandbox_registry

    if conn is None:
        from reconciler.aws.connection import connect

        with connect(target, plan.region) as opened:
            registry = sandbox_registry(opened)
    else:
        registry = sandbox_registry(conn)
    routes = Routes(registry)
    results: list[PreflightCheck] = []
    for store, trigger in subjects:
        results += _check_store(store, trigger, desired, routes)
    return replace(plan, preflight=tuple(results))


def _check_store(store: DesiredStore, trigger: dict[str, Any], desired: Any, routes: Any) -> list[PreflightCheck]:
    from reconciler.preflight.checks import Subject, check_subject

    xks = store.xks
    assert xks is not None
    if xks.connectivity == "VPC_ENDPOINT_SERVICE":
        return [PreflightCheck(store.name, "proxy", "not_checked",
                               "the proxy is behind a VPC endpoint service, which only KMS reaches; "
                               "connect the store to test it")]
    hostname = (urlsplit(xks.uri_endpoint).hostname or "").lower()
    route = routes.resolve(hostname)
    if route.kind == "unregistered":
        return [PreflightCheck(store.name, "proxy", "not_checked", route.detail)]
    secret: Optional[str]
    try:
        secret = desired.inputs.secret_access_key(store.name)
    except UserError as exc:
        return [PreflightCheck(store.name, "proxy", "not_checked",
                               f"the credential's secret is not available here ({exc}); apply checks it")]
    keys = tuple((k.xks_key_id, k.xks_key_id in trigger["creating"]) for k in store.keys if k.xks_key_id)
    if not trigger["store"]:
        keys = tuple(k for k in keys if k[1])  # only new keys: the store's proxy settings are unchanged
    subject = Subject(store.name, hostname, xks.uri_path, xks.access_key_id or "", secret, keys,
                      rotation=trigger["rotation"])
    if not trigger["store"]:
        from reconciler.preflight.checks import check_keys

        return check_keys(subject, route)
    return check_subject(subject, route)


def check_all(desired: Any, target: Any) -> list[PreflightCheck]:
    """``reconciler preflight``: every check of every present XKS store of the manifests, as if
    each were about to be created (every declared key checked as a new one)."""
    from reconciler.aws.connection import connect
    from reconciler.preflight.routes import Routes, sandbox_registry

    stores = [s for s in desired.state.stores if s.xks is not None and s.state == "present"]
    if not stores:
        return []
    with connect(target, desired.state.region) as conn:
        routes = Routes(sandbox_registry(conn))
    results: list[PreflightCheck] = []
    for store in stores:
        trigger = {"store": True, "rotation": False,
                   "creating": {k.xks_key_id for k in store.keys if k.xks_key_id}}
        results += _check_store(store, trigger, desired, routes)
    return results
