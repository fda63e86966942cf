"""``reconciler export --from-terraform STATEFILE``: hand stores that Terraform manages over.

Reads a Terraform state (format version 4, as a state file holds it; or the JSON of
``terraform show -json``) and builds, from its ``aws_kms_custom_key_store``, ``aws_kms_key`` (with a
``custom_key_store_id``) and ``aws_kms_alias`` resources, the same kind of observed state that
``export`` builds from KMS, so the manifests come out of the same writer
(:mod:`reconciler.adopt.export`). What a state does not hold is decided here:

* secrets: the state holds the XKS proxy's secret access key and the kmsuser password (in clear
  text, which is one reason to leave it); they are never read into anything written or printed.
  The manifests reference them as ``{fromEnv: NAME}``, as ``export`` does;
* the connection state is not a Terraform attribute: a store is exported ``connected``;
* ``deletion_window_in_days`` is per key in Terraform and per store in a manifest: the store gets
  the keys' value when they agree, else KMS's default (30), with a note.

Every resource handed over is listed as a ``terraform state rm`` line, quoted for a shell.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reconciler.adopt.tfstate import ALIAS, KEY, STORE, Resource, ShapeError, from_show_json, from_state_v4
from reconciler.errors import UserError
from reconciler.live.model import LiveKey, LiveState, LiveStore, LiveXks

MAX_STATE_BYTES = 512 * 1024 * 1024


@dataclass
class TerraformExport:
    live: LiveState
    addresses: dict[str, list[str]] = field(default_factory=dict)  # store name -> its resources' addresses
    windows: dict[str, int] = field(default_factory=dict)  # store name -> deletion window of its keys
    notes: list[str] = field(default_factory=list)

    def state_rm_lines(self) -> list[str]:
        return [shlex.join(["terraform", "state", "rm", address])
                for name in sorted(self.addresses) for address in self.addresses[name]]


# -- reading the state -------------------------------------------------------------------------

def read_state(path: str) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()[:MAX_STATE_BYTES + 1]
    except FileNotFoundError:
        raise UserError(f"{path}: no such Terraform state file (pull it with: terraform state pull > "
                        f"{shlex.quote(path)})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read the Terraform state ({exc.strerror or exc})") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise UserError(f"{path}: not a Terraform state in JSON; pass the output of 'terraform state pull' or "
                        "'terraform show -json'") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a Terraform state (a JSON object is expected)")
    return data


def resources(data: dict[str, Any], path: str = "STATEFILE") -> list[Resource]:
    """The managed KMS resources of a state file (version 4) or of ``terraform show -json``, their
    shape checked (:mod:`reconciler.adopt.tfstate`)."""
    try:
        if data.get("version") == 4 and "values" not in data:
            return list(from_state_v4(data.get("resources")))
        if "values" in data or "format_version" in data:
            return list(from_show_json(data.get("values")))
    except ShapeError as exc:
        raise UserError(f"{path}: not a Terraform state the tool can read: {exc}") from None
    version = data.get("version")
    shown = repr(version) if isinstance(version, (int, float, type(None))) else f"{type(version).__name__}"
    raise UserError(f"{path}: not a Terraform state of format version 4 (version {shown}); upgrade it "
                    "with a current Terraform ('terraform state pull'), or pass 'terraform show -json'")


# -- the observed state it describes ------------------------------------------------------------

def _region(found: list[Resource], region: str | None, path: str) -> str:
    seen = {r.values["region"] for r in found if r.values.get("region")}  # AWS provider 6: per resource
    seen |= {arn.split(":")[3] for r in found if r.type == KEY
             for arn in [r.values.get("arn") or ""] if arn.startswith("arn:") and arn.count(":") >= 4}
    seen.discard("")
    if region:
        return region
    if len(seen) == 1:
        return seen.pop()
    if seen:
        raise UserError(f"{path} holds stores of several regions ({', '.join(sorted(seen))}): export one region "
                        "at a time with --region")
    raise UserError(f"{path} does not say which region its stores are in: pass --region")


def _xks(values: dict[str, Any]) -> LiveXks | None:
    if values.get("custom_key_store_type") != "EXTERNAL_KEY_STORE":
        return None
    credential = values.get("xks_proxy_authentication_credential") or [{}]
    credential = credential[0] if isinstance(credential, list) else credential
    return LiveXks(
        connectivity=values.get("xks_proxy_connectivity") or "PUBLIC_ENDPOINT",
        uri_endpoint=values.get("xks_proxy_uri_endpoint") or "",
        uri_path=values.get("xks_proxy_uri_path") or "",
        access_key_id=(credential or {}).get("access_key_id") or None,  # an identifier; the secret is not read
        vpc_endpoint_service_name=values.get("xks_proxy_vpc_endpoint_service_name") or None,
    )


def from_terraform(path: str, *, region: str | None = None, stores: list[str] | None = None) -> TerraformExport:
    """The stores, keys and aliases of the state in ``path``, as observed state to export."""
    found = list(resources(read_state(path), path))
    in_scope = [r for r in found if not (region and r.values.get("region") not in (None, "", region))]
    the_region = _region(in_scope, region, path)
    store_res = [r for r in in_scope if r.type == STORE]
    if not store_res:
        raise UserError(f"{path} holds no {STORE} resource{' in ' + region if region else ''}: nothing to export")
    by_id = {r.values.get("id"): r for r in store_res}
    name_of = {sid: r.values.get("custom_key_store_name") for sid, r in by_id.items()}
    wanted = set(stores or name_of.values())
    unknown = sorted(wanted - set(name_of.values()))
    if unknown:
        raise UserError(f"no {STORE} named {', '.join(unknown)} in {path} (stores there: "
                        f"{', '.join(sorted(filter(None, name_of.values())))})")
    result = TerraformExport(live=LiveState(region=the_region))
    aliases: dict[str, list[Resource]] = {}
    for r in in_scope:
        if r.type == ALIAS and r.values.get("target_key_id"):
            aliases.setdefault(r.values["target_key_id"], []).append(r)
    keys: dict[str, list[LiveKey]] = {}
    windows: dict[str, set[int]] = {}
    for r in in_scope:
        if r.type != KEY or not r.values.get("custom_key_store_id"):
            continue
        sid = r.values["custom_key_store_id"]
        if sid not in by_id:
            result.notes.append(f"{r.address} is in custom key store {sid}, which this state does not manage: "
                                "left out")
            continue
        if name_of[sid] not in wanted:
            continue
        key_id = r.values.get("key_id") or r.values.get("id")
        held = sorted(aliases.get(key_id, []) + aliases.get(r.values.get("arn") or "", []), key=lambda a: a.address)
        keys.setdefault(sid, []).append(LiveKey(
            key_id=key_id, arn=r.values.get("arn") or "", store_id=sid,
            origin="EXTERNAL_KEY_STORE" if r.values.get("xks_key_id") else "AWS_CLOUDHSM",
            key_state="Enabled" if r.values.get("is_enabled", True) else "Disabled",
            enabled=bool(r.values.get("is_enabled", True)), description=r.values.get("description") or "",
            xks_key_id=r.values.get("xks_key_id") or None,
            aliases=tuple(a.values["name"] for a in held),
            tags=tuple(sorted((r.values.get("tags") or {}).items())),
        ))
        if r.values.get("deletion_window_in_days"):
            windows.setdefault(sid, set()).add(int(r.values["deletion_window_in_days"]))
        result.addresses.setdefault(name_of[sid], []).extend([r.address] + [a.address for a in held])
    live_stores: dict[str, LiveStore] = {}
    for sid, r in by_id.items():
        name = name_of[sid]
        if name not in wanted:
            continue
        live_stores[name] = LiveStore(
            id=sid, name=name, type=r.values.get("custom_key_store_type") or "AWS_CLOUDHSM",
            connection_state="(not in the Terraform state)",
            cloudhsm_cluster_id=r.values.get("cloud_hsm_cluster_id") or None,
            trust_anchor_certificate=r.values.get("trust_anchor_certificate") or None,
            xks=_xks(r.values), keys=tuple(keys.get(sid, ())),
        )
        result.addresses[name] = [r.address] + sorted(result.addresses.get(name, []))
        window = windows.get(sid, set())
        if len(window) == 1:
            result.windows[name] = window.pop()
        elif window:
            result.notes.append(f"{name}: its keys' deletion_window_in_days differ ({', '.join(map(str, sorted(window)))}); "
                                "the manifest's deletion.pendingWindowDays is KMS's default, 30: set it")
    result.live = LiveState(region=the_region, stores=live_stores, read_at=datetime.now(timezone.utc))
    return result


def source_for(export: TerraformExport, path: str):
    """The header and decisions of manifests exported from the state in ``path``."""
    from reconciler.adopt.export import Source

    comments = {name: ["Terraform managed it as: " + ", ".join(addresses) + ". After a plan of this manifest "
                       "shows no changes, hand it over with the 'terraform state rm' lines export printed."]
                for name, addresses in export.addresses.items()}
    return Source(title=f"'reconciler export --from-terraform' from {path}",
                  connection_note="not in the Terraform state: connected assumed; write 'disconnected' if it is not",
                  comments=comments, windows=dict(export.windows), reporter="the Terraform state",
                  secret_note="never read from the Terraform state")
