"""Generated worlds for the property tests: a live state built in the emulator with ordinary KMS
calls, and manifests for the same store names, drawn independently of each other.

Three store names; each may exist live (XKS or CloudHSM, in any connection state, with up to two
keys in any key state, with or without alias, tags and description) and may be named in a
manifest (present or absent, connected or disconnected, of the same or the other type, with up to
two keys). Optionally a key outside every custom key store holds an alias a manifest may want.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from reconciler.plan.planner import MANAGED_TAG
from tests.reliability.harness import ACCESS_KEY_ID, ACCOUNT, PASSWORD, REGION, SECRET, World, hsm_doc, xks_doc

NAMES = ("alpha", "bravo", "charlie")
IDENTS = ("k1", "k2")
CONNECTION_STATES = ("CONNECTED", "DISCONNECTED", "FAILED", "CONNECTING", "DISCONNECTING")
DESCRIPTIONS = ("", "old", "new")
TAGS = ({}, {"team": "a"}, {"team": "b", "env": "x"})
ENDPOINTS = (0, 1)
PATHS = ("/kms/xks/v1", "/kms/xks/v2")

live_keys = st.lists(st.fixed_dictionaries({
    "ident": st.sampled_from(IDENTS),
    "state": st.sampled_from(("Enabled", "Disabled", "PendingDeletion")),
    "alias": st.booleans(),
    "managedTag": st.booleans(),
    "description": st.sampled_from(DESCRIPTIONS),
    "tags": st.sampled_from(TAGS),
    "window": st.integers(7, 30),
}), max_size=2, unique_by=lambda k: k["ident"])

live_stores = st.fixed_dictionaries({
    "type": st.sampled_from(("EXTERNAL_KEY_STORE", "AWS_CLOUDHSM")),
    "endpoint": st.sampled_from(ENDPOINTS),
    "path": st.sampled_from(PATHS),
    "connection": st.sampled_from(CONNECTION_STATES),
    "errorCode": st.sampled_from(("INVALID_CREDENTIALS", "NETWORK_ERRORS", "XKS_PROXY_TIMED_OUT")),
    "keys": live_keys,
})

manifest_keys = st.lists(st.fixed_dictionaries({
    "ident": st.sampled_from(IDENTS),
    "enabled": st.booleans(),
    "description": st.sampled_from(DESCRIPTIONS),
    "tags": st.sampled_from(TAGS),
    "alias": st.booleans(),
}), max_size=2, unique_by=lambda k: k["ident"])

manifest_stores = st.fixed_dictionaries({
    # the live store's type, mostly (the other type is refused: KMS cannot change it)
    "type": st.sampled_from(("same", "same", "same", "other")),
    "state": st.sampled_from(("present", "present", "absent")),
    "connection": st.sampled_from(("connected", "connected", "disconnected")),
    "endpoint": st.sampled_from(ENDPOINTS),
    "path": st.sampled_from(PATHS),
    "window": st.integers(7, 30),
    "keys": manifest_keys,
})

def _resolve_types(spec: dict[str, Any]) -> dict[str, Any]:
    for name, (live, manifest) in spec["stores"].items():
        if manifest is not None:
            base = live["type"] if live else "EXTERNAL_KEY_STORE"
            other = "AWS_CLOUDHSM" if base == "EXTERNAL_KEY_STORE" else "EXTERNAL_KEY_STORE"
            manifest["type"] = base if manifest["type"] == "same" else other
    return spec


worlds = st.fixed_dictionaries({
    "stores": st.fixed_dictionaries({name: st.tuples(st.none() | live_stores, st.none() | manifest_stores)
                                     for name in NAMES}),
    "strayAlias": st.one_of(st.none(), st.none(), st.none(),
                            st.sampled_from([f"alias/{n}-{i}" for n in NAMES for i in IDENTS])),
}).map(_resolve_types)


def alias_of(store: str, ident: str) -> str:
    return f"alias/{store}-{ident}"


def xks_key_id(store: str, ident: str) -> str:
    return f"{store}-{ident}"


def endpoint_of(store: str, variant: int) -> str:
    return f"https://{store}-{variant}.example.com"


def build(w: World, spec: dict[str, Any]) -> dict[str, str]:
    """Make the live state and write the manifests; returns store name -> CloudHSM cluster id."""
    from reconciler.sandbox.seed import create_cloudhsm_cluster, trust_anchor

    kms, settings = w.kms, w.settings
    clusters: dict[str, str] = {}
    for name, (live, manifest) in spec["stores"].items():
        if any(x and x["type"] == "AWS_CLOUDHSM" for x in (live, manifest)):
            clusters[name] = create_cloudhsm_cluster(ACCOUNT, REGION)
            (w.root / "manifests").mkdir(parents=True, exist_ok=True)
            (w.root / "manifests" / f"ca-{name}.pem").write_text(trust_anchor(ACCOUNT, REGION, clusters[name]))

    ids: dict[str, str] = {}
    for name, (live, _) in spec["stores"].items():
        if live is None:
            continue
        if live["type"] == "EXTERNAL_KEY_STORE":
            ids[name] = kms.create_custom_key_store(
                CustomKeyStoreName=name, CustomKeyStoreType="EXTERNAL_KEY_STORE",
                XksProxyConnectivity="PUBLIC_ENDPOINT", XksProxyUriEndpoint=endpoint_of(name, live["endpoint"]),
                XksProxyUriPath=live["path"],
                XksProxyAuthenticationCredential={"AccessKeyId": ACCESS_KEY_ID, "RawSecretAccessKey": SECRET},
            )["CustomKeyStoreId"]
        else:
            ids[name] = kms.create_custom_key_store(
                CustomKeyStoreName=name, CloudHsmClusterId=clusters[name],
                TrustAnchorCertificate=trust_anchor(ACCOUNT, REGION, clusters[name]), KeyStorePassword=PASSWORD,
            )["CustomKeyStoreId"]

    # connect every store that needs keys or ends anything but DISCONNECTED/CONNECTING
    connected = [n for n, (live, _) in spec["stores"].items()
                 if live and (live["keys"] or live["connection"] in ("CONNECTED", "DISCONNECTING"))]
    for name in connected:
        kms.connect_custom_key_store(CustomKeyStoreId=ids[name])
    if connected:
        settings.clock.advance(settings.connect_delay_seconds)

    for name, (live, _) in spec["stores"].items():
        for key in (live or {}).get("keys", []):
            _make_key(w, name, ids[name], live["type"], key)

    # stable states
    to_disconnect = [n for n in connected if spec["stores"][n][0]["connection"] in ("DISCONNECTED", "FAILED",
                                                                                    "CONNECTING")]
    for name in to_disconnect:
        kms.disconnect_custom_key_store(CustomKeyStoreId=ids[name])
    if to_disconnect:
        settings.clock.advance(settings.disconnect_delay_seconds)
    failed = [n for n, (live, _) in spec["stores"].items() if live and live["connection"] == "FAILED"]
    for name in failed:
        settings.faults.connection_errors[name] = spec["stores"][name][0]["errorCode"]
        kms.connect_custom_key_store(CustomKeyStoreId=ids[name])
    if failed:
        settings.clock.advance(settings.connect_delay_seconds)
        kms.describe_custom_key_stores()  # settles the connections (FAILED) while the faults are set
        settings.faults.connection_errors.clear()
    # transitional states last: no clock advance after them
    for name, (live, _) in spec["stores"].items():
        if live and live["connection"] == "CONNECTING":
            kms.connect_custom_key_store(CustomKeyStoreId=ids[name])
        elif live and live["connection"] == "DISCONNECTING":
            kms.disconnect_custom_key_store(CustomKeyStoreId=ids[name])

    if spec["strayAlias"]:
        stray = kms.create_key(Description="not in any custom key store")["KeyMetadata"]["KeyId"]
        try:
            kms.create_alias(AliasName=spec["strayAlias"], TargetKeyId=stray)
        except kms.exceptions.AlreadyExistsException:
            pass  # a key of a store already has it

    write_manifests(w, spec, clusters)
    return clusters


def _make_key(w: World, store: str, store_id: str, store_type: str, key: dict[str, Any]) -> None:
    kms = w.kms
    tags = [{"TagKey": k, "TagValue": v} for k, v in sorted(key["tags"].items())]
    kwargs: dict[str, Any] = {"CustomKeyStoreId": store_id, "Description": key["description"]}
    if store_type == "EXTERNAL_KEY_STORE":
        kwargs.update(Origin="EXTERNAL_KEY_STORE", XksKeyId=xks_key_id(store, key["ident"]))
        if key["managedTag"]:
            tags.append({"TagKey": MANAGED_TAG, "TagValue": xks_key_id(store, key["ident"])})
    else:
        kwargs.update(Origin="AWS_CLOUDHSM")
        if key["managedTag"]:
            tags.append({"TagKey": MANAGED_TAG, "TagValue": alias_of(store, key["ident"])})
    if tags:
        kwargs["Tags"] = tags
    key_id = kms.create_key(**kwargs)["KeyMetadata"]["KeyId"]
    if key["alias"]:
        kms.create_alias(AliasName=alias_of(store, key["ident"]), TargetKeyId=key_id)
    if key["state"] == "Disabled":
        kms.disable_key(KeyId=key_id)
    elif key["state"] == "PendingDeletion":
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=key["window"])


def write_manifests(w: World, spec: dict[str, Any], clusters: dict[str, str]) -> None:
    docs = []
    for name, (_, manifest) in spec["stores"].items():
        if manifest is None:
            continue
        keys = []
        for key in manifest["keys"]:
            entry = {"enabled": key["enabled"], "description": key["description"], "tags": key["tags"]}
            if manifest["type"] == "EXTERNAL_KEY_STORE":
                entry["xksKeyId"] = xks_key_id(name, key["ident"])
                if key["alias"]:
                    entry["alias"] = alias_of(name, key["ident"])
            else:
                entry["alias"] = alias_of(name, key["ident"])
            keys.append(entry)
        common = {"state": manifest["state"], "connection": manifest["connection"], "window": manifest["window"],
                  "keys": keys}
        if manifest["type"] == "EXTERNAL_KEY_STORE":
            docs.append(xks_doc(name, endpoint=endpoint_of(name, manifest["endpoint"]), path=manifest["path"],
                                **common))
        else:
            docs.append(hsm_doc(name, clusters[name], f"ca-{name}.pem", **common))
    w.write("stores.yaml", "---\n".join(docs) if docs else "")
