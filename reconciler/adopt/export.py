"""``reconciler export``: write manifests that describe the live custom key stores, to adopt them.

The manifests are built from the same :class:`~reconciler.live.model.LiveState` that ``plan``
compares against, so that planning them against the same account gives no changes. What KMS
does not report is decided here, and each decision is written as a comment in the file:

* secrets (the XKS proxy's secret access key, the CloudHSM kmsuser password) are never readable:
  they become ``{fromEnv: NAME}`` references, NAME derived from the store's name, and the header
  says what to export before ``apply`` needs them (``plan`` never does);
* the XKS ``accessKeyId`` is reported by KMS and is not a secret: it is written literally;
* the trust anchor certificate of a CloudHSM store is written beside the manifest
  (``certs/<store>-customerCA.crt``) with ``--out``, or inline when printing to stdout;
* the tool's own ``reconciler:managed-key`` tag is not a user tag and is left out;
* a key PendingDeletion is *not* declared: declaring it would make the next plan rescue it
  (``cancel_key_deletion``). It is listed in a comment, ready to uncomment to rescue it;
* a key of a CloudHSM store without an alias cannot be declared (CloudHSM keys are identified by
  their alias): it is listed in a comment with the command that gives it one;
* a FAILED store is exported ``connection: connected`` (the state someone asked for) and the plan
  proposes its repair (disconnect, then connect); a DISCONNECTING store is ``disconnected``;
* a key that is Unavailable (its store not connected) does not say whether it is enabled: it is
  exported ``enabled: true`` with a comment; the plan compares it once the store is connected;
* the pending window used earlier is not reported: ``deletion.pendingWindowDays`` is KMS's
  default, 30.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from reconciler.aws.connection_errors import fix_for
from reconciler.errors import UserError
from reconciler.live.model import LiveKey, LiveState, LiveStore
from reconciler.manifest.model import API_VERSION, DEFAULT_PENDING_WINDOW_DAYS, KIND
from reconciler.plan.model import ceil_seconds, iso
from reconciler.plan.planner import MANAGED_TAG, QUARANTINE_TAG

CERTS_DIR = "certs"
_LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")


@dataclass
class ExportedFile:
    path: str  # relative to the output directory
    text: str
    store: str | None = None  # the store a manifest describes (None for a certificate file)


@dataclass
class Source:
    """Where the observed state came from when it is not KMS (e.g. a Terraform state): the files'
    header says so, and it supplies what KMS would have reported."""

    title: str  # "'reconciler export --from-terraform' from terraform.tfstate"
    connection_note: str  # why the connection is what the manifest says
    comments: dict[str, list[str]] = field(default_factory=dict)  # store name -> header lines
    windows: dict[str, int] = field(default_factory=dict)  # store name -> deletion.pendingWindowDays
    reporter: str = "KMS"  # who reported the values: "as KMS reports it"
    secret_note: str = "KMS never returns it"  # why a secret is a reference


@dataclass
class Export:
    files: list[ExportedFile] = field(default_factory=list)
    # environment variables the manifests reference: name -> what to put in it
    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # things a reviewer must look at

    @property
    def manifests(self) -> list[ExportedFile]:
        return [f for f in self.files if f.store is not None]


# -- YAML text ---------------------------------------------------------------------------------

def scalar(value: Any) -> str:
    """``value`` as one line of YAML that the manifest loader reads back as exactly ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=2**31)
    text = text[:-5] if text.endswith("\n...\n") else text
    text = text.rstrip("\n")
    if any(mark in text for mark in _LINE_BREAKS) or yaml.safe_load(text) != value:
        text = yaml.safe_dump(value, default_style='"', allow_unicode=False, width=2**31).rstrip("\n")
    if yaml.safe_load(text) != value:  # pragma: no cover - PyYAML's double-quoted style is lossless
        raise ValueError(f"cannot write {value!r} as YAML")
    return text


def _comment(text: str, indent: str = "", width: int = 100) -> list[str]:
    """``text`` as comment lines, wrapped (a value from KMS never escapes the comment)."""
    for mark in _LINE_BREAKS:
        text = text.replace(mark, " ")
    lines = textwrap.wrap(text, width=max(40, width - len(indent) - 2), break_long_words=False,
                          break_on_hyphens=False) or [""]
    return [f"{indent}# {line}".rstrip() for line in lines]


def slug(name: str) -> str:
    """A file name for a store name (which may hold any character)."""
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return (text or "store")[:120]


def env_base(name: str) -> str:
    """An environment variable prefix for a store name: payments-xks -> PAYMENTS_XKS."""
    text = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").upper() or "STORE"
    if text[0].isdigit():
        text = "STORE_" + text
    return text[:200]


def _unique(candidate: str, taken: set[str], sep: str) -> str:
    name, n = candidate, 2
    while name.lower() in taken:
        name = f"{candidate}{sep}{n}"
        n += 1
    taken.add(name.lower())
    return name


# -- one store ---------------------------------------------------------------------------------

CONNECTION_FOR_STATE = {
    "CONNECTED": "connected",
    "CONNECTING": "connected",
    "FAILED": "connected",
    "DISCONNECTED": "disconnected",
    "DISCONNECTING": "disconnected",
}


def _key_label(key: LiveKey) -> str:
    return key.xks_key_id or (key.aliases[0] if key.aliases else key.key_id)


def _alias_for(key: LiveKey) -> str | None:
    """The alias to declare: the one the tool gave the key (its managed tag) if the key still has
    it, else the first. Other aliases stay as they are (the tool never deletes an alias)."""
    if not key.aliases:
        return None
    tagged = key.tag_dict.get(MANAGED_TAG)
    return tagged if tagged in key.aliases else key.aliases[0]


def _user_tags(key: LiveKey) -> dict[str, str]:
    return {k: v for k, v in key.tags if k not in (MANAGED_TAG, QUARANTINE_TAG) and not k.lower().startswith("aws:")}


def _key_lines(key: LiveKey, commented: bool = False) -> list[str]:
    lines: list[str] = []
    alias = _alias_for(key)
    first = True

    def item(name: str, value: str, note: str = "") -> None:
        nonlocal first
        lead = "- " if first else "  "
        first = False
        lines.append(f"{lead}{name}: {value}".rstrip() + (f"   # {note}" if note else ""))

    if key.xks_key_id:
        item("xksKeyId", scalar(key.xks_key_id), "" if commented else f"KMS key {key.key_id}")
    if alias:
        others = [a for a in key.aliases if a != alias]
        note = f"also named {', '.join(others)} (left as it is)" if others else ""
        if not key.xks_key_id and not commented:
            note = f"KMS key {key.key_id}" + (f"; {note}" if note else "")
        item("alias", scalar(alias), note)
    item("description", scalar(key.description))
    if key.key_state == "Unavailable" and not commented:
        item("enabled", "true", "UNKNOWN: the store is not connected, so KMS does not say whether this key is "
                                "enabled; the plan compares it once the store is connected")
    else:
        enabled = key.enabled or key.pending_deletion  # a rescued key is re-enabled
        item("enabled", "true" if enabled else "false")
    tags = _user_tags(key)
    if tags:
        item("tags", "")
        lines += [f"    {scalar(k)}: {scalar(v)}" for k, v in sorted(tags.items())]
    else:
        item("tags", "{}")
    return lines


def _store_document(live: LiveState, store: LiveStore, env: dict[str, str], taken_env: set[str],
                    cert_path: str | None, notes: list[str], source: Source | None = None,
                    account: str | None = None) -> str:
    region = live.region
    read_at = live.read_at.isoformat().replace("+00:00", "Z") if isinstance(live.read_at, datetime) else "?"
    secrets: list[tuple[str, str]] = []
    out: list[str] = []

    def secret_env(suffix: str, what: str) -> str:
        name = _unique(f"{env_base(store.name)}_{suffix}", taken_env, "_")
        env[name] = what
        secrets.append((name, what))
        return name

    body: list[str] = [
        f"apiVersion: {API_VERSION}",
        f"kind: {KIND}",
        "metadata:",
        f"  name: {scalar(store.name)}",
        "spec:",
        f"  region: {scalar(region)}",
        f'  account: "{account}"' if account else
        '  # account: "111122223333"   # optional: with it, apply refuses to run in any other account',
        f"  type: {store.type}",
        "  state: present",
    ]
    connection = CONNECTION_FOR_STATE.get(store.connection_state, "connected")
    conn_note = source.connection_note if source else f"KMS reports {store.connection_state}"
    reporter, secret_note = (source.reporter, source.secret_note) if source else ("KMS", "KMS never returns it")
    if store.connection_state == "FAILED":
        code = store.connection_error_code or "an unknown error"
        conn_note += (f" ({code}: {fix_for(store.connection_error_code)}). The plan proposes the repair: "
                      "disconnect, then connect. Write 'disconnected' to leave it disconnected instead")
        notes.append(f"{store.name}: the store's connection FAILED with {code}; the plan proposes repairing it "
                     "(disconnect, then connect)")
    if store.connection_state == "FAILED":
        body += _comment(conn_note, "  ")
        body.append(f"  connection: {connection}")
    else:
        body.append(f"  connection: {connection}   # {conn_note}")

    if store.xks is not None:
        x = store.xks
        body += [
            "  xks:",
            f"    connectivity: {x.connectivity}",
            f"    uriEndpoint: {scalar(x.uri_endpoint)}",
            f"    uriPath: {scalar(x.uri_path)}",
        ]
        if x.connectivity == "VPC_ENDPOINT_SERVICE":
            if x.vpc_endpoint_service_name:
                body.append(f"    vpcEndpointServiceName: {scalar(x.vpc_endpoint_service_name)}")
            if x.vpc_endpoint_service_owner:
                body.append(f'    vpcEndpointServiceOwner: "{x.vpc_endpoint_service_owner}"')
        secret = secret_env("SECRET_ACCESS_KEY", "the XKS proxy's secret access key (43-64 base64 characters)")
        body += ["    credential:"]
        if x.access_key_id:
            body.append(f"      accessKeyId: {scalar(x.access_key_id)}   # as {reporter} reports it; not a secret")
        else:
            access = secret_env("ACCESS_KEY_ID", "the XKS proxy's access key id (20-30 characters of A-Z, 2-7)")
            body.append(f"      accessKeyId: {{fromEnv: {access}}}   # {reporter} did not report it")
        body.append(f"      secretAccessKey: {{fromEnv: {secret}}}   # {secret_note}: set {secret}")
    if store.type == "AWS_CLOUDHSM":
        password = secret_env("KMSUSER_PASSWORD", "the kmsuser password of the CloudHSM cluster (7-32 characters)")
        body += ["  cloudHsm:", f"    clusterId: {scalar(store.cloudhsm_cluster_id or '')}"]
        pem = (store.trust_anchor_certificate or "").strip()
        if cert_path:
            body.append(f"    trustAnchorCertificate: {{fromFile: {cert_path}}}   # the cluster's customerCA.crt, "
                        f"as {reporter} reports it")
        else:
            body.append("    trustAnchorCertificate: |")
            body += [f"      {line.rstrip()}" for line in pem.splitlines()]
        body.append(f"    keyStorePassword: {{fromEnv: {password}}}   # {secret_note}: set {password}")

    declared, pending, aliasless = [], [], []
    for key in sorted(store.keys, key=_key_label):
        if key.pending_deletion:
            pending.append(key)
        elif store.type == "AWS_CLOUDHSM" and _alias_for(key) is None:
            aliasless.append(key)
        else:
            declared.append(key)
    body.append("  keys:" if declared else "  keys: []")
    for key in declared:
        body += [f"    {line}" for line in _key_lines(key)]
    if pending:
        body += _comment(
            "Pending deletion, so NOT declared here: declaring a key makes the next plan rescue it "
            "(cancel_key_deletion). Left out, KMS deletes it on its DeletionDate and the plan lists it "
            "as a key not in the manifest. To rescue one, uncomment it under keys: (and drop 'keys: []' "
            "if present).", "    ")
        for key in pending:
            when = iso(ceil_seconds(key.deletion_date)) if key.deletion_date else "?"
            body += _comment(f"{key.key_id}: deleted on {when}", "    ")
            if store.type == "AWS_CLOUDHSM" and _alias_for(key) is None:
                body += _comment("(no alias: give it one before declaring it)", "    ")
                continue
            body += [f"    # {line}" for line in _key_lines(key, commented=True)]
        notes.append(f"{store.name}: {len(pending)} key(s) pending deletion are not declared (declaring one "
                     "would make the plan rescue it); see the comment in the manifest")
    if aliasless:
        body += _comment(
            "Keys of a CloudHSM store are identified by their alias, and these have none, so they are NOT "
            "declared (the plan lists them as keys not in the manifest and leaves them alone). To manage "
            "one, give it an alias, e.g. aws kms create-alias --alias-name alias/NAME --target-key-id KEY_ID, "
            "then export again:", "    ")
        for key in aliasless:
            note = f"{key.key_id} ({key.key_state})"
            if key.description:
                note += f": {key.description}"
            tagged = key.tag_dict.get(MANAGED_TAG)
            if tagged:
                note += f"; reconciler created it as {tagged} (that alias is gone)"
            body += _comment(note, "    ")
        notes.append(f"{store.name}: {len(aliasless)} CloudHSM key(s) without an alias are not declared; see the "
                     "comment in the manifest")
    window = source.windows.get(store.name) if source else None
    body += [
        "  deletion:",
        f"    pendingWindowDays: {window}   # the keys' deletion_window_in_days" if window else
        f"    pendingWindowDays: {DEFAULT_PENDING_WINDOW_DAYS}   # KMS does not report the window used before; "
        "this applies to keys this tool schedules for deletion (7-30)",
    ]

    if source:
        out += _comment(f"Exported by {source.title} ({region}, read {read_at}): store {store.id} "
                        f"({store.type}, {len(store.keys)} key(s)).")
        for line in source.comments.get(store.name, []):
            out += _comment(line)
    else:
        out += _comment(f"Exported by 'reconciler export' from {region} at {read_at}: store {store.id} "
                        f"({store.type}, {store.connection_state}, {len(store.keys)} key(s)).")
    exception = {"FAILED": " except the repair of its FAILED connection.",
                 "CONNECTING": " except a connect_store step that waits for the connection KMS is making."}
    out += _comment("Review it and commit it: 'reconciler plan' against the same account then shows no changes "
                    "for this store" + exception.get(store.connection_state, "."))
    if secrets:
        out += ["#", "# KMS never returns secrets. 'reconciler plan' needs none of these; set them before an apply",
                "# whose steps send them (an update of the store's settings, or a repair):"]
        out += [f"#   export {name}=...   # {what}" for name, what in secrets]
    return "\n".join(out + body) + "\n"


# -- the whole export --------------------------------------------------------------------------

def build_export(live: LiveState, *, stores: list[str] | None = None, with_files: bool = True,
                 source: Source | None = None, account: str | None = None, subdir: str = "") -> Export:
    """The manifests (and certificate files) for the live stores, in name order.

    ``stores`` restricts the export to those names (an unknown name is an error); ``with_files``
    writes trust anchors as files beside the manifests (else inline). ``account`` (a fleet's
    export) is written as each store's ``spec.account``; ``subdir`` (``ACCOUNT/REGION/``) is where
    its files go.
    """
    wanted = list(live.stores) if not stores else list(dict.fromkeys(stores))
    missing = [name for name in wanted if name not in live.stores]
    if missing:
        known = ", ".join(sorted(live.stores)) or "none"
        raise UserError(f"no custom key store named {', '.join(missing)} in {live.region} (stores there: {known})")
    result = Export()
    taken_files: set[str] = set()
    taken_env: set[str] = set()
    for name in sorted(wanted):
        store = live.stores[name]
        base = _unique(slug(name), taken_files, "-")
        cert_path = None
        if with_files and store.type == "AWS_CLOUDHSM" and store.trust_anchor_certificate:
            cert_path = f"{CERTS_DIR}/{base}-customerCA.crt"
            result.files.append(ExportedFile(subdir + cert_path, store.trust_anchor_certificate.strip() + "\n"))
        text = _store_document(live, store, result.env, taken_env, cert_path, result.notes, source, account)
        result.files.append(ExportedFile(f"{subdir}{base}.yaml", text, store=name))
    return result


def check_export(export: Export, *, input_error: str | None = None) -> None:
    """Validate the exported manifests with the manifest loader, as 'reconciler validate' would.

    Raises UserError naming the problems: an export that does not load is a bug, never a file to
    hand to a user. ``input_error`` blames the input instead (values KMS would never have
    reported, from a file the user gave): the message is that text and the first problem, on one line.
    """
    from reconciler.manifest.loader import load
    from reconciler.manifest.secrets import SecretError

    if not export.manifests:
        return
    with tempfile.TemporaryDirectory(prefix="reconciler-export-") as tmp:
        _write_files(export, Path(tmp))
        result = load([tmp])
        problems = [str(p) for p in result.problems]
        for manifest in result.manifests if not problems else []:
            if manifest.model.spec.cloudHsm is not None:  # the trust anchor (literal or file) must resolve
                try:
                    manifest.resolve("spec.cloudHsm.trustAnchorCertificate")
                except SecretError as exc:
                    problems.append(str(exc))
        if problems and input_error:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise UserError(f"{input_error}: {problems[0].replace(tmp + '/', '')}{more}")
        if problems:
            lines = "\n".join(p.replace(tmp + "/", "") for p in problems)
            raise UserError(f"internal error: the exported manifests do not validate; please report it:\n{lines}")


def _write_files(export: Export, directory: Path) -> list[Path]:
    written = []
    for item in export.files:
        target = directory / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.text, encoding="utf-8")
        written.append(target)
    return written


def _unwritable(path: Path) -> str | None:
    """Why ``path`` cannot become a file (its text, through a rename), or None if it can."""
    for parent in reversed(path.parents):
        if str(parent) in ("", ".") or parent.is_dir():
            continue
        if parent.exists() or parent.is_symlink():
            return f"{parent} is not a directory"
        break  # missing: created, with what is below it
    if path.is_dir():
        return "it is a directory"
    if (path.exists() or path.is_symlink()) and not path.is_file():
        return "it is not a regular file"
    return None


def write_export(export: Export, out_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write the files under ``out_dir``; refuse (writing nothing) if any exists, unless ``force``.

    Every destination is checked before anything is written, then every file is written beside
    its destination and only then renamed onto it: a failure removes what it wrote (temporary
    files, directories it created) and leaves the directory as it was.
    """
    directory = Path(out_dir)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"--out {directory}: not a directory")
    for item in export.files:
        reason = _unwritable(directory / item.path)
        if reason:
            raise UserError(f"cannot write {directory / item.path}: {reason}; choose another --out (nothing "
                            "was written)")
    existing = [item.path for item in export.files if (directory / item.path).exists()]
    if existing and not force:
        listing = "\n".join(f"  {directory / p}" for p in existing)
        raise UserError(f"{len(existing)} file(s) already exist; nothing was written:\n{listing}\n"
                        "Choose another --out directory, or pass --force to overwrite them")
    created: list[Path] = []  # directories made here, parents first
    staged: list[tuple[Path, Path]] = []  # (temporary file, destination)
    renamed = 0
    target = directory
    try:
        for item in export.files:
            target = directory / item.path
            for parent in reversed([target.parent, *target.parent.parents]):
                if not parent.is_dir():
                    parent.mkdir()
                    created.append(parent)
            staged.append((_stage(target, item.text), target))
        for tmp_path, target in staged:
            tmp_path.replace(target)
            renamed += 1
    except OSError as exc:
        for tmp_path, _ in staged[renamed:]:
            tmp_path.unlink(missing_ok=True)
        for made in reversed(created if not renamed else []):
            try:
                made.rmdir()
            except OSError:
                pass
        done = f"{renamed} of {len(staged)} files were written" if renamed else "nothing was written"
        raise UserError(f"cannot write {target}: {exc.strerror or exc}; choose another --out ({done})") from None
    return [target for _, target in staged]


def _stage(target: Path, text: str) -> Path:
    """``text`` in a new hidden file beside ``target`` (the manifest loader skips hidden files)."""
    for attempt in range(100):
        tmp = target.with_name(f".{target.name}.{os.getpid()}-{attempt}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            with open(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return tmp
    raise FileExistsError(errno.EEXIST, "too many temporary files beside it", str(target))


def render_stdout(export: Export) -> str:
    """All manifests as one multi-document YAML stream."""
    return "---\n".join(item.text for item in export.manifests)


__all__ = ["Export", "ExportedFile", "Source", "build_export", "check_export", "render_stdout", "scalar", "write_export"]
