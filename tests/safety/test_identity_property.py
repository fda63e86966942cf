"""Property (issue: safety defects): over generated live states, including rotated keys,
duplicate-tagged keys and stores of the other type, a plan never cancels a deletion, moves an
alias, or destroys anything that the manifests do not name explicitly.

"Named explicitly", as the README's safety model states it:
- a key of an XKS store is named by its XksKeyId; a key of a CloudHSM store by the alias it holds;
- an alias is moved only onto the XKS key the manifest declares it for, from a key of the same store;
- destruction happens only in a store declared ``state: absent`` whose declared type is the store's.

Pure planner, no emulator: RECONCILER_PROPERTY_EXAMPLES sets the number of examples (default 400).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.live.model import LiveKey, LiveState, LiveStore, LiveXks
from reconciler.plan.desired import DesiredCloudHsm, DesiredKey, DesiredState, DesiredStore, DesiredXks
from reconciler.plan.matching import MANAGED_TAG
from reconciler.plan.model import Action
from reconciler.plan.planner import diff

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
TYPES = ("EXTERNAL_KEY_STORE", "AWS_CLOUDHSM")
STORE_NAMES = ("a", "b", "c")
ALIASES = tuple(f"alias/k{i}" for i in range(5))
XKS_IDS = tuple(f"ext-{i}" for i in range(4))
KEY_STATES = ("Enabled", "Disabled", "PendingDeletion", "Unavailable")
XKS = DesiredXks(connectivity="PUBLIC_ENDPOINT", uri_endpoint="https://x.example.com", uri_path="/kms/xks/v1",
                 access_key_id="ABCDEFGHIJKLMNOPQRST")
LIVE_XKS = LiveXks(connectivity="PUBLIC_ENDPOINT", uri_endpoint="https://x.example.com", uri_path="/kms/xks/v1",
                   access_key_id="ABCDEFGHIJKLMNOPQRST")
HSM = DesiredCloudHsm(cluster_id="cluster-jxhlf7644ne", trust_anchor_certificate=None)
EXAMPLES = int(os.environ.get("RECONCILER_PROPERTY_EXAMPLES", 400))


@st.composite
def live_states(draw) -> LiveState:
    aliases_left = list(ALIASES)
    stores = {}
    n = 0
    for name in draw(st.lists(st.sampled_from(STORE_NAMES), unique=True, max_size=3)):
        store_type = draw(st.sampled_from(TYPES))
        keys = []
        for _ in range(draw(st.integers(0, 4))):
            n += 1
            state = draw(st.sampled_from(KEY_STATES))
            xks_id = draw(st.sampled_from(XKS_IDS)) if store_type == "EXTERNAL_KEY_STORE" else None
            if xks_id and any(k.xks_key_id == xks_id for k in keys):
                xks_id = None if draw(st.booleans()) else xks_id  # rarely, a duplicate KMS forbids
            held = tuple(draw(st.lists(st.sampled_from(aliases_left), unique=True, max_size=2))) if aliases_left else ()
            aliases_left = [a for a in aliases_left if a not in held]
            tag = draw(st.one_of(st.none(), st.sampled_from(ALIASES + XKS_IDS)))
            keys.append(LiveKey(
                key_id=f"k-{draw(st.integers(0, 99)):02d}-{n}", arn=f"arn:{n}", store_id=f"cks-{name}",
                origin=store_type, key_state=state, enabled=state == "Enabled", xks_key_id=xks_id,
                deletion_date=NOW + timedelta(days=3) if state == "PendingDeletion" else None,
                aliases=held, tags=((MANAGED_TAG, tag),) if tag else ()))
        stores[name] = LiveStore(
            id=f"cks-{name}", name=name, type=store_type,
            connection_state=draw(st.sampled_from(("CONNECTED", "DISCONNECTED", "FAILED", "CONNECTING"))),
            connection_error_code="NETWORK_ERRORS", xks=LIVE_XKS if store_type == "EXTERNAL_KEY_STORE" else None,
            cloudhsm_cluster_id=HSM.cluster_id if store_type == "AWS_CLOUDHSM" else None, keys=tuple(keys))
    aliases = {a: k.key_id for s in stores.values() for k in s.keys for a in k.aliases}
    outside = draw(st.lists(st.sampled_from(aliases_left), unique=True, max_size=2)) if aliases_left else []
    aliases.update({a: f"outside-{a}" for a in outside})  # aliases of keys in no store
    return LiveState(region="us-east-1", stores=stores, aliases=aliases)


@st.composite
def desired_states(draw) -> DesiredState:
    stores = []
    for name in draw(st.lists(st.sampled_from(STORE_NAMES), unique=True, max_size=3)):
        store_type = draw(st.sampled_from(TYPES))
        state = draw(st.sampled_from(("present", "absent")))
        keys = []
        used_aliases: set[str] = set()
        used_ids: set[str] = set()
        for _ in range(draw(st.integers(0, 3))):
            alias = draw(st.one_of(st.none(), st.sampled_from(ALIASES)))
            if alias in used_aliases:
                continue
            if store_type == "EXTERNAL_KEY_STORE":
                xks_id = draw(st.sampled_from(XKS_IDS))
                if xks_id in used_ids:
                    continue
                used_ids.add(xks_id)
            else:
                if alias is None:
                    continue
                xks_id = None
            used_aliases.add(alias) if alias else None
            keys.append(DesiredKey(alias=alias, xks_key_id=xks_id, enabled=draw(st.booleans())))
        stores.append(DesiredStore(
            name=name, type=store_type, state=state, connection=draw(st.sampled_from(("connected", "disconnected"))),
            pending_window_days=7, keys=tuple(keys) if state == "present" else (),
            xks=XKS if store_type == "EXTERNAL_KEY_STORE" and state == "present" else None,
            cloudhsm=HSM if store_type == "AWS_CLOUDHSM" and state == "present" else None))
    return DesiredState(region="us-east-1", stores=tuple(stores))


def _names(declared: DesiredStore, key: LiveKey) -> DesiredKey | None:
    """The declared key that names ``key`` explicitly, if any."""
    for want in declared.keys:
        if want.xks_key_id and key.xks_key_id == want.xks_key_id:
            return want
        if not want.xks_key_id and want.alias in key.aliases:
            return want
    return None


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desired_states(), live_states())
def test_a_plan_touches_only_what_the_manifests_name_explicitly(desired, live):
    steps, _ = diff(desired, live, NOW)
    wanted = {s.name: s for s in desired.stores}
    for step in steps:
        declared = wanted[step.store]
        have = live.stores.get(step.store)
        if step.action.destructive:
            assert declared.state == "absent", step.id
            assert have is not None and have.type == declared.type, f"{step.id}: type mismatch destroyed"
        if step.action == Action.cancel_key_deletion:
            key = next(k for k in have.keys if k.key_id == step.params["keyId"])
            assert declared.state == "present" and declared.type == have.type
            assert _names(declared, key) is not None, f"{step.id}: rescues {key} that nothing names"
        if step.action == Action.update_key and step.params.get("enabled"):
            # enabling is not destruction: besides a key named explicitly, the one key the tool
            # tagged for a declared key (an interrupted create) may be enabled as declared
            key = next(k for k in have.keys if k.key_id == step.params["keyId"])
            tagged = key.tag_dict.get(MANAGED_TAG) in {w.ident for w in declared.keys}
            assert _names(declared, key) is not None or (tagged and not key.pending_deletion), \
                f"{step.id}: enables a key nothing names"
        if step.action == Action.create_alias and step.params.get("update"):
            alias = step.params["alias"]
            key = next(k for k in have.keys if k.key_id == step.params["keyId"])
            want = _names(declared, key)
            assert want is not None and want.xks_key_id and want.alias == alias, f"{step.id}: moves {alias}"
            holder = live.aliases[alias]
            assert holder in {k.key_id for k in have.keys}, f"{step.id}: moves an alias from another store"
