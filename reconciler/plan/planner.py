"""The planner: ``diff(desired, live, now) -> (steps, findings)``.

A pure, deterministic function: no I/O, no clock of its own, the same inputs give the same steps
in the same order. The ordering rules follow KMS:

* a store is created, then connected, then its keys are created, then their aliases;
* what KMS lets change while a store is CONNECTED is updated in place; anything else is
  disconnect -> update -> connect (and its keys are unavailable meanwhile);
* a FAILED store is repaired by disconnect -> (update) -> connect;
* a store is decommissioned by scheduling deletion of every key in it, disconnecting it, and
  deleting it once the last key is gone (a *deferred* step until the latest DeletionDate); with a
  quarantine, disconnected first and its keys scheduled only after it, and never a key CloudTrail
  shows in use (:mod:`.decommission`);
* nothing is ever destroyed in a store that is not ``state: absent``, and stores no manifest
  names are only reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reconciler.aws.connection_errors import fix_for
from reconciler.live.model import LiveKey, LiveState, LiveStore
from reconciler.plan.desired import DesiredKey, DesiredState, DesiredStore
from reconciler.plan.decommission import decommission
from reconciler.plan.decommission import label as _label
from reconciler.plan.matching import MANAGED_TAG, QUARANTINE_TAG, KeyMatch, match_keys
from reconciler.plan.model import SENSITIVE, Action, Finding, Step, ceil_seconds, iso

# XKS fields UpdateCustomKeyStore accepts while the store is CONNECTED (API Reference:
# "you can update the name, XksProxyUriPath and XksProxyAuthenticationCredential of a connected
# external key store"); every other field needs the store DISCONNECTED.
XKS_ONLINE_FIELDS = {"uriPath", "accessKeyId"}
XKS_OFFLINE_FIELDS = {"connectivity", "uriEndpoint", "vpcEndpointServiceName", "vpcEndpointServiceOwner"}

CONNECTED_LIKE = {"CONNECTED", "CONNECTING"}


@dataclass
class _Builder:
    steps: list[Step] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def add(self, action: Action, store: str, reason: str, *, key: str | None = None,
            params: dict[str, Any] | None = None, depends_on: list[str | None] | None = None,
            deferred_until: datetime | None = None) -> str:
        step_id = f"{store}:{action.value}" + (f":{key}" if key else "")
        self.steps.append(Step(
            id=step_id, action=action, store=store, key=key, reason=reason,
            params=params or {}, depends_on=tuple(d for d in (depends_on or []) if d),
            deferred_until=deferred_until,
        ))
        return step_id

    def find(self, kind: str, store: str, message: str, key: str | None = None) -> None:
        self.findings.append(Finding(kind=kind, store=store, key=key, message=message))


def diff(desired: DesiredState, live: LiveState, now: datetime, *,
         allow_recent_use: bool = False) -> tuple[tuple[Step, ...], tuple[Finding, ...]]:
    out = _Builder()
    declared = desired.names()
    for name, store in sorted(live.stores.items()):
        if name not in declared:
            out.find("unmanaged_store", name,
                     f"{store.id} ({store.type}, {store.connection_state}, {len(store.keys)} keys) "
                     "is in no manifest; it is left as it is")
    for want in sorted(desired.stores, key=lambda s: s.name):
        have = live.stores.get(want.name)
        mismatch = _identity_mismatch(want, have)
        if mismatch:
            out.find("refused", want.name, mismatch)
        elif want.state == "absent":
            decommission(want, have, now, out, live.evidence, allow_recent_use)
        elif have is None:
            _create(want, live, out)
        else:
            _reconcile(want, have, live, out)
    return tuple(out.steps), tuple(out.findings)


def _identity_mismatch(want: DesiredStore, have: LiveStore | None) -> str | None:
    """Why the live store of that name is not the store the manifest means, or None.

    The name finds the store; its type (and, for a decommission, whatever identifying settings
    the manifest gives) must agree before anything is planned for it. A decommission above all
    must name exactly what it destroys."""
    if have is None:
        return None
    where = want.source or "the manifest"
    if have.type != want.type:
        if want.state == "absent":
            return (f"the manifest ({where}) decommissions a {want.type} store named {want.name}, but the store "
                    f"of that name in KMS ({have.id}) is {have.type}; nothing of it is scheduled for deletion. "
                    "A decommission must name exactly what it destroys: set spec.type to the store's type if "
                    "this is the store to delete")
        return (f"the store is {have.type} in KMS but {want.type} in {where}: KMS cannot change a store's "
                "type, and this tool never deletes a store to recreate it. Set spec.type back, or decommission "
                "this store (state: absent) and declare a new one under another name")
    if want.state == "absent":
        live_values = {"cloudHsm.clusterId": have.cloudhsm_cluster_id,
                       "xks.uriEndpoint": have.xks.uri_endpoint if have.xks else None,
                       "xks.vpcEndpointServiceName": have.xks.vpc_endpoint_service_name if have.xks else None}
        wrong = [f"spec.{name} is {value!r} but the store's is {live_values.get(name)!r}"
                 for name, value in want.identity if live_values.get(name) != value]
        if wrong:
            return (f"the manifest ({where}) decommissions {want.name}, but the store of that name in KMS "
                    f"({have.id}) is not the one it describes: {'; '.join(wrong)}; nothing of it is scheduled "
                    "for deletion. A decommission must name exactly what it destroys")
    return None


# -- create ------------------------------------------------------------------------------------

def _store_params(want: DesiredStore) -> dict[str, Any]:
    params: dict[str, Any] = {"name": want.name, "type": want.type}
    if want.xks:
        params.update({
            "connectivity": want.xks.connectivity,
            "uriEndpoint": want.xks.uri_endpoint,
            "uriPath": want.xks.uri_path,
        })
        if want.xks.vpc_endpoint_service_name:
            params["vpcEndpointServiceName"] = want.xks.vpc_endpoint_service_name
        if want.xks.vpc_endpoint_service_owner:
            params["vpcEndpointServiceOwner"] = want.xks.vpc_endpoint_service_owner
        params["accessKeyId"] = want.xks.access_key_id
        params["secretAccessKey"] = SENSITIVE
    if want.cloudhsm:
        params["clusterId"] = want.cloudhsm.cluster_id
        params["trustAnchorCertificate"] = _cert_summary(want.cloudhsm.trust_anchor_certificate)
        params["keyStorePassword"] = SENSITIVE
    return params


def _cert_summary(pem: str | None) -> str:
    import hashlib

    if not pem:
        return "(none)"
    digest = hashlib.sha256(pem.strip().encode()).hexdigest()[:16]
    return f"(certificate sha256:{digest})"


def _create(want: DesiredStore, live: LiveState, out: _Builder) -> None:
    created = out.add(Action.create_store, want.name, "the store is declared and does not exist",
                      params=_store_params(want))
    if want.connection != "connected":
        if want.keys:
            out.find("note", want.name,
                     f"{len(want.keys)} declared keys are not created while the store is declared "
                     "disconnected (KMS creates keys only in a CONNECTED store)")
        return
    connected = out.add(Action.connect_store, want.name,
                        "connection: connected; KMS connects asynchronously, apply waits for CONNECTED",
                        depends_on=[created])
    for key in want.keys:
        _create_key(want, key, live, None, connected, out)


def _key_params(store: DesiredStore, key: DesiredKey) -> dict[str, Any]:
    params: dict[str, Any] = {"description": key.description, "enabled": key.enabled,
                              "tags": dict(key.tags)}
    if key.xks_key_id:
        params["xksKeyId"] = key.xks_key_id
    if key.alias:
        params["alias"] = key.alias
    params["origin"] = "EXTERNAL_KEY_STORE" if store.type == "EXTERNAL_KEY_STORE" else "AWS_CLOUDHSM"
    return params


def _create_key(store: DesiredStore, key: DesiredKey, live: LiveState, have: LiveStore | None,
                after: str | None, out: _Builder) -> None:
    if key.alias and not _alias_free(key.alias, have, live, out, store.name, key):
        return
    reason = "the key is declared and does not exist in the store"
    if not key.enabled:
        reason += "; it is created, then disabled"
    created = out.add(Action.create_key, store.name, reason, key=key.ident,
                      params=_key_params(store, key), depends_on=[after])
    if key.alias:
        out.add(Action.create_alias, store.name, f"names the new key {key.alias}", key=key.alias,
                params={"alias": key.alias, "targetKey": key.ident}, depends_on=[created])


def _alias_free(alias: str, have: LiveStore | None, live: LiveState, out: _Builder, store: str,
                key: DesiredKey) -> bool:
    """An alias held by a key outside this store is never moved: that key is not ours."""
    target = live.aliases.get(alias)
    if target is None:
        return True
    if have is not None and any(k.key_id == target for k in have.keys):
        return True
    out.find("refused", store,
             f"alias {alias} already names key {target}, which is not in this store; the tool does "
             "not move aliases away from keys it does not manage. Delete or rename that alias, or "
             "choose another alias", key=key.ident)
    return False


# -- update, connection, keys ------------------------------------------------------------------

def _store_changes(want: DesiredStore, have: LiveStore, out: _Builder) -> dict[str, tuple[Any, Any]] | None:
    """Field -> (live, desired) for what differs; None when the change cannot be made."""
    changes: dict[str, tuple[Any, Any]] = {}
    if want.xks and have.xks:
        pairs = {
            "connectivity": (have.xks.connectivity, want.xks.connectivity),
            "uriEndpoint": (have.xks.uri_endpoint, want.xks.uri_endpoint),
            "uriPath": (have.xks.uri_path, want.xks.uri_path),
            "vpcEndpointServiceName": (have.xks.vpc_endpoint_service_name, want.xks.vpc_endpoint_service_name),
            "vpcEndpointServiceOwner": (have.xks.vpc_endpoint_service_owner, want.xks.vpc_endpoint_service_owner),
            "accessKeyId": (have.xks.access_key_id, want.xks.access_key_id),
        }
        for name, (old, new) in pairs.items():
            if new is None and name in ("vpcEndpointServiceOwner", "accessKeyId"):
                continue  # not declared: keep whatever KMS has
            if (old or None) != (new or None):
                changes[name] = (old, new)
    if want.cloudhsm:
        if have.cloudhsm_cluster_id != want.cloudhsm.cluster_id:
            changes["clusterId"] = (have.cloudhsm_cluster_id, want.cloudhsm.cluster_id)
        wanted_anchor = (want.cloudhsm.trust_anchor_certificate or "").strip()
        live_anchor = (have.trust_anchor_certificate or "").strip()
        if wanted_anchor and live_anchor and wanted_anchor != live_anchor:
            out.find("refused", want.name,
                     "spec.cloudHsm.trustAnchorCertificate differs from the store's, and KMS cannot change "
                     "a store's trust anchor; restore the store's certificate in the manifest")
            return None
    return changes


def _update_params(want: DesiredStore, have: LiveStore, changes: dict[str, tuple[Any, Any]],
                   resend_secret: bool) -> dict[str, Any]:
    params: dict[str, Any] = {"id": have.id}
    for name, (_old, new) in sorted(changes.items()):
        params[name] = new
    if "accessKeyId" in changes or (resend_secret and want.xks):
        params["accessKeyId"] = want.xks.access_key_id if want.xks else None
        params["secretAccessKey"] = SENSITIVE
    if resend_secret and want.cloudhsm:
        params["keyStorePassword"] = SENSITIVE
    params["changes"] = {name: {"from": old, "to": new} for name, (old, new) in sorted(changes.items())}
    return params


def _reconcile(want: DesiredStore, have: LiveStore, live: LiveState, out: _Builder) -> None:
    changes = _store_changes(want, have, out)
    if changes is None:
        return
    state = have.connection_state
    keys_note = f"; its {len(have.keys)} key(s) are unavailable until it reconnects" if have.keys else ""
    match = match_keys(want, have)
    hidden = _hidden_enabled(want, match)

    def connect_params(**params: Any) -> dict[str, Any]:
        # KMS hides whether a key is enabled while its store is not connected (KeyState
        # Unavailable): connect_store sets the declared keys' enabled state once it is visible
        return {**params, "keysEnabled": hidden} if hidden else params
    wants_connected = want.connection == "connected"
    connect_after: str | None = None  # the step after which the store is CONNECTED again
    blocked_keys = False

    if state == "FAILED":
        code = have.connection_error_code
        resend = code == "INVALID_CREDENTIALS"
        first = out.add(Action.disconnect_store, want.name,
                        f"the store's connection FAILED with {code}: {fix_for(code)}. A FAILED store is "
                        "repaired by disconnecting it first", params={"from": state, "connectionErrorCode": code})
        last = first
        if changes or resend:
            why = "applies the manifest's changes" if changes else "re-sends the credential from the manifest"
            last = out.add(Action.update_store, want.name, f"{why} before reconnecting ({code})",
                           params=_update_params(want, have, changes, resend), depends_on=[first])
        if wants_connected:
            connect_after = out.add(Action.connect_store, want.name,
                                    f"reconnects after repairing {code}; apply waits for CONNECTED",
                                    params=connect_params(), depends_on=[last])
        else:
            blocked_keys = True
    elif changes:
        offline = sorted(set(changes) & (XKS_OFFLINE_FIELDS | {"clusterId"}))
        online_ok = not offline
        if state == "CONNECTED" and online_ok:
            out.add(Action.update_store, want.name,
                    f"{', '.join(sorted(changes))} can change while the store is connected",
                    params=_update_params(want, have, changes, False))
            if not wants_connected:
                out.add(Action.disconnect_store, want.name, "connection: disconnected" + keys_note,
                        params={"from": state})
                blocked_keys = True
        else:
            first = None
            if state in CONNECTED_LIKE:
                first = out.add(Action.disconnect_store, want.name,
                                f"KMS changes {', '.join(offline)} only while the store is disconnected"
                                + keys_note, params={"from": state})
            updated = out.add(Action.update_store, want.name,
                              f"changes {', '.join(sorted(changes))}",
                              params=_update_params(want, have, changes, False), depends_on=[first])
            if wants_connected and first is not None:
                # the plan disconnected a connected store: reconnect it whatever the update's
                # outcome, so a failed update leaves the store as the user had it (connected, on
                # its previous settings) and the failure is reported; the store's chain runs in
                # order, so the connect still comes after the update
                connect_after = out.add(Action.connect_store, want.name,
                                        "reconnects after the update (if the update fails, on the previous "
                                        "settings: the store stays as it was); apply waits for CONNECTED",
                                        params=connect_params(), depends_on=[first])
            elif wants_connected:
                connect_after = out.add(Action.connect_store, want.name,
                                        "connects after the update; apply waits for CONNECTED",
                                        params=connect_params(), depends_on=[updated])
            else:
                blocked_keys = True
    else:
        if wants_connected and state in ("DISCONNECTED", "DISCONNECTING"):
            connect_after = out.add(Action.connect_store, want.name,
                                    "connection: connected; apply waits for CONNECTED",
                                    params=connect_params(**{"from": state}))
        elif wants_connected and state == "CONNECTING":
            connect_after = out.add(Action.connect_store, want.name,
                                    "the store is still CONNECTING; apply waits for CONNECTED before "
                                    "anything that needs the connection", params=connect_params(**{"from": state}))
        elif not wants_connected and state in ("CONNECTED", "CONNECTING"):
            out.add(Action.disconnect_store, want.name, "connection: disconnected" + keys_note,
                    params={"from": state})
            blocked_keys = True
        elif not wants_connected:
            blocked_keys = True
    _end_quarantine(want, have, connect_after, out)
    _reconcile_keys(want, have, live, match, connect_after, blocked_keys, out)


def _end_quarantine(want: DesiredStore, have: LiveStore, after: str | None, out: _Builder) -> None:
    """A store back to present is out of quarantine: its keys lose the quarantine tag."""
    tagged = sorted(k.key_id for k in have.keys if QUARANTINE_TAG in k.tag_dict)
    if tagged:
        out.add(Action.end_quarantine, want.name,
                f"the store is declared present again: its quarantine ends, and the {QUARANTINE_TAG} tag is "
                f"removed from its {len(tagged)} key(s); nothing is scheduled for deletion",
                params={"tag": QUARANTINE_TAG, "keyIds": tagged}, depends_on=[after])


def _hidden_enabled(want: DesiredStore, match: KeyMatch) -> dict[str, bool]:
    """KeyId -> declared ``enabled``, for the declared keys whose enabled state KMS hides now."""
    hidden = {}
    for key in want.keys:
        live_key = match.live_key(key)
        if live_key is not None and live_key.key_state == "Unavailable":
            hidden[live_key.key_id] = key.enabled
    return dict(sorted(hidden.items()))


def _reconcile_keys(want: DesiredStore, have: LiveStore, live: LiveState, match: KeyMatch,
                    connect_after: str | None, blocked: bool, out: _Builder) -> None:
    matched: set[str] = set()
    for key in want.keys:
        if key.ident in match.refused:
            out.find("refused", want.name, match.refused[key.ident], key=key.ident)
            continue
        live_key = match.live_key(key)
        if live_key is None:
            if blocked:
                out.find("note", want.name,
                         "the key is not created while the store is declared disconnected "
                         "(KMS creates keys only in a CONNECTED store)", key=key.ident)
            else:
                _create_key(want, key, live, have, connect_after, out)
            continue
        matched.add(live_key.key_id)
        _reconcile_key(want, key, live_key, have, live, out)
    for live_key in have.keys:
        if live_key.key_id not in matched:
            label = _label(live_key)
            what = match.notes.get(live_key.key_id)
            out.find("drift_key", want.name,
                     f"key {live_key.key_id} ({live_key.key_state}) is in the store but not in the manifest"
                     + (f"; {what}" if what else "") + "; it is left as it is", key=label)


def _reconcile_key(want: DesiredStore, key: DesiredKey, live_key: LiveKey, have: LiveStore,
                   live: LiveState, out: _Builder) -> None:
    after: str | None = None
    enabled_now = live_key.enabled
    if live_key.pending_deletion:
        # rounded up to the second, as everywhere a deletion date is shown (the rescue window, status)
        when = iso(ceil_seconds(live_key.deletion_date)) if live_key.deletion_date else "its DeletionDate"
        after = out.add(Action.cancel_key_deletion, want.name,
                        f"the key is declared but scheduled for deletion on {when}: it is rescued before "
                        "then (KMS returns it as Disabled)", key=key.ident,
                        params={"keyId": live_key.key_id, "deletionDate": when})
        enabled_now = False
    update: dict[str, Any] = {}
    if live_key.key_state != "Unavailable" or live_key.pending_deletion:
        if key.enabled != enabled_now:
            update["enabled"] = key.enabled
    if key.description != live_key.description:
        update["description"] = key.description
    want_tags = dict(key.tags)
    have_tags = {k: v for k, v in live_key.tags if k not in (MANAGED_TAG, QUARANTINE_TAG)}
    set_tags = {k: v for k, v in want_tags.items() if have_tags.get(k) != v}
    remove_tags = sorted(set(have_tags) - set(want_tags))
    if set_tags:
        update["setTags"] = set_tags
    if remove_tags:
        update["removeTags"] = remove_tags
    if update:
        what = ", ".join(sorted(k for k in update if k not in ("setTags", "removeTags")) +
                         (["tags"] if set_tags or remove_tags else []))
        out.add(Action.update_key, want.name, f"{what} differ{'s' if ',' not in what else ''} from the manifest", key=key.ident,
                params={"keyId": live_key.key_id, **update}, depends_on=[after])
    if key.alias and key.alias not in live_key.aliases and _alias_free(key.alias, have, live, out, want.name, key):
        retarget = key.alias in live.aliases
        out.add(Action.create_alias, want.name,
                ("moves " if retarget else "names the key ") + key.alias +
                (" to this key from another key of the store" if retarget else ""),
                key=key.alias, params={"alias": key.alias, "targetKey": key.ident,
                                       "keyId": live_key.key_id, "update": retarget},
                depends_on=[after])
