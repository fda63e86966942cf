"""Load manifests from YAML files, reporting every problem at once with FILE:LINE:COL.

:func:`load` reads files and directories (every ``*.yaml`` / ``*.yml`` below a directory, in
sorted order, skipping hidden files and directories), parses them with a safe YAML loader that
keeps each node's position, validates each document against :class:`KeyStoreManifest`, then
runs the cross-manifest rules (:mod:`reconciler.manifest.checks`).

Nothing here raises for a user's mistake: malformed YAML, duplicate mapping keys, YAML tags that
would build Python objects, non-UTF-8 bytes, empty files and documents, unknown fields, wrong
types and KMS constraint violations all become :class:`Problem` values that point at the
offending node.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node

from reconciler.manifest.constraints import (
    API_VERSION,
    KEY_STORE_PASSWORD,
    KIND,
    TRUST_ANCHOR_CERTIFICATE,
    XKS_ACCESS_KEY_ID,
    XKS_SECRET_ACCESS_KEY,
    KmsString,
)
from reconciler.manifest.model import KeyStoreManifest
from reconciler.manifest.problems import (
    Problem,
    document_problems,
    header_problems,
    validation_problems,
    yaml_error_problem,
)
from reconciler.manifest.secrets import SecretError, SensitiveStr, resolve_secret
from reconciler.manifest.yaml_nodes import (
    MAX_EXPANDED_NODES,
    FastManifestLoader,
    ManifestLoader,
    Recursive,
    TooLarge,
    check_expansion,
    format_field_path,
    node_problems,
    parse_field_path,
    walk,
)

MANIFEST_SUFFIXES = (".yaml", ".yml")
# a KeyStore manifest is a few KB (a store with 1,000 keys is about 150 KB): a larger file is a
# mistake (a log, a dump) and reading and parsing it would take seconds to minutes
MAX_MANIFEST_BYTES = 1024 * 1024
# the repository configuration at the root of a directory of manifests: how to reach each account
REPO_CONFIG_FILE = "reconciler.yaml"

# --------------------------------------------------------------------------------------------
# Results


@dataclass(eq=False)
class LoadedManifest:
    """A valid manifest document and where it came from."""

    model: KeyStoreManifest
    path: Path  # the file, as given or as found below a directory argument
    doc_index: int  # 0-based position of the document in its file
    line: int  # 1-based line of the document's first node
    col: int
    manifest_dir: Path  # absolute directory of the file: fromFile paths are relative to it
    root: Path  # absolute root directory: fromFile must stay inside it
    region: str | None  # spec.region, else the default region given to load(); None = unknown
    node: Node = field(repr=False)

    @property
    def name(self) -> str:
        return self.model.metadata.name

    @property
    def source(self) -> str:
        """``FILE:LINE`` of the document, for messages."""
        return f"{self.path}:{self.line}"

    def locate(self, field_path: str | Sequence[str | int]) -> tuple[int, int]:
        """The 1-based (line, col) of a field, e.g. ``"spec.keys[0].alias"``.

        Fields the document leaves out (defaults) resolve to their nearest written ancestor.
        """
        loc = parse_field_path(field_path) if isinstance(field_path, str) else tuple(field_path)
        found = walk(self.node, loc)
        mark = found.value.start_mark
        return mark.line + 1, mark.column + 1

    def problem(self, field_path: str, message: str) -> Problem:
        """A :class:`Problem` that points at a field of this manifest."""
        line, col = self.locate(field_path)
        return Problem(str(self.path), line, col, f"{field_path}: {message}", field_path)

    def resolve(self, field_path: str, *, allow_outside_root: bool = False) -> SensitiveStr | None:
        """Resolve a credential field (literal or reference) to its value, or None if not set.

        ``field_path`` is one of ``spec.xks.credential.accessKeyId``,
        ``spec.xks.credential.secretAccessKey``, ``spec.cloudHsm.trustAnchorCertificate``,
        ``spec.cloudHsm.keyStorePassword``. The value's format is checked against KMS's rules.
        Raises :class:`SecretError` (message prefixed with FILE:LINE:COL, never the value).
        """
        try:
            return self._resolve(field_path, allow_outside_root)
        except SecretError as exc:
            line, col = self.locate(field_path)
            raise SecretError(f"{self.path}:{line}:{col}: {exc}") from None

    def _resolve(self, field_path: str, allow_outside_root: bool) -> SensitiveStr | None:
        loc = parse_field_path(field_path)
        check = _RESOLVABLE.get(tuple(str(p) for p in loc))
        if check is None:
            raise ValueError(f"{field_path} is not a credential field; use one of {', '.join(_RESOLVABLE_NAMES)}")
        value: Any = self.model
        for part in loc:
            value = getattr(value, str(part), None) if value is not None else None
        if value is None:
            return None
        if isinstance(value, str):
            return SensitiveStr(value)
        return resolve_secret(value, manifest_dir=self.manifest_dir, root=self.root,
                              allow_outside_root=allow_outside_root, field=field_path, check=check)


_RESOLVABLE: dict[tuple[str, ...], KmsString] = {
    ("spec", "xks", "credential", "accessKeyId"): XKS_ACCESS_KEY_ID,
    ("spec", "xks", "credential", "secretAccessKey"): XKS_SECRET_ACCESS_KEY,
    ("spec", "cloudHsm", "trustAnchorCertificate"): TRUST_ANCHOR_CERTIFICATE,
    ("spec", "cloudHsm", "keyStorePassword"): KEY_STORE_PASSWORD,
}
_RESOLVABLE_NAMES = [".".join(k) for k in _RESOLVABLE]


@dataclass
class LoadResult:
    """Every valid manifest, and every problem found. Act on the manifests only if ``ok``."""

    manifests: list[LoadedManifest]
    problems: list[Problem]
    files: list[Path]

    @property
    def ok(self) -> bool:
        return not self.problems

    def digest(self) -> str:
        return digest(self.manifests)


# --------------------------------------------------------------------------------------------
# Loading


def _load_file(path: Path, root: Path, default_region: str | None) -> tuple[list[LoadedManifest], list[Problem]]:
    import stat

    file = str(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):  # a FIFO or a device: reading it could block or never end
            return [], [Problem(file, None, None, "not a regular file; a manifest must be a YAML file")]
        if st.st_size > MAX_MANIFEST_BYTES:
            return [], [_too_large(file, st.st_size)]
        with open(path, "rb") as fh:
            raw = fh.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        return [], [Problem(file, None, None, f"cannot read the file: {exc.strerror or exc}")]
    if len(raw) > MAX_MANIFEST_BYTES:  # it grew while being read
        return [], [_too_large(file, len(raw))]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return [], [Problem(file, line, col, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file "
                                             "as UTF-8")]
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return [], [Problem(file, 1, 1, f"the file is empty; expected one or more KeyStore manifests "
                                        f"(apiVersion: {API_VERSION}, kind: {KIND})")]

    if FastManifestLoader is not None:
        try:
            return _parse_file(FastManifestLoader, file, path, root, text, default_region, fast=True)
        except yaml.YAMLError:
            pass  # parsed again below, for the pure-Python loader's error message
    return _parse_file(ManifestLoader, file, path, root, text, default_region)


def _too_large(file: str, size: int) -> Problem:
    return Problem(file, None, None, f"the file is {size:,} bytes, larger than the {MAX_MANIFEST_BYTES // 1024} KiB "
                                     "a manifest file may be; is it a manifest? Split large sets of stores into "
                                     "one file per store")


def _parse_file(loader_class: Any, file: str, path: Path, root: Path, text: str, default_region: str | None,
                fast: bool = False) -> tuple[list[LoadedManifest], list[Problem]]:
    manifests: list[LoadedManifest] = []
    problems: list[Problem] = []
    loader: Any = None
    index = 0
    try:
        loader = loader_class(text)
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                manifest, doc_problems = _load_document(loader, file, path, root, node, index, default_region)
                problems.extend(doc_problems)
                if manifest is not None:
                    manifests.append(manifest)
            index += 1
    except yaml.YAMLError as exc:
        if fast:
            raise
        problems.append(yaml_error_problem(file, exc, text))
    except RecursionError:
        problems.append(Problem(file, None, None, "invalid YAML: the document is nested too deeply"))
    finally:
        if loader is not None:
            loader.dispose()
    problems.sort(key=lambda p: (p.line or 0, p.col or 0))  # stable: same place keeps its order
    if index == 0 and not problems:
        problems.append(Problem(file, 1, 1, "the file holds no YAML document (only comments); expected one "
                                            f"or more KeyStore manifests (apiVersion: {API_VERSION}, kind: {KIND})"))
    return manifests, problems


def _load_document(loader: ManifestLoader, file: str, path: Path, root: Path, node: Node, index: int,
                   default_region: str | None) -> tuple[LoadedManifest | None, list[Problem]]:
    problems = document_problems(file, node, index)
    if problems:
        return None, problems
    for bad, message in node_problems(node):
        problems.append(Problem(file, bad.start_mark.line + 1, bad.start_mark.column + 1, message))
    if problems:
        return None, problems
    try:
        check_expansion(node)
    except TooLarge:
        return None, [Problem(file, node.start_mark.line + 1, node.start_mark.column + 1,
                              f"document {index + 1} has more than {MAX_EXPANDED_NODES:,} YAML nodes (counting "
                              "each use of an alias in full); a KeyStore manifest has a few hundred: is this a "
                              "manifest? Remove aliases that repeat large parts, or split the document")]
    except Recursive as exc:
        mark = exc.node.start_mark
        return None, [Problem(file, mark.line + 1, mark.column + 1, "a YAML alias refers to the node that "
                                                                    "contains it (recursive data)")]
    loader.duplicate_keys.clear()
    try:
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:  # e.g. an unhashable key, a merge of a non-mapping
        loader.constructed_objects, loader.recursive_objects, loader.state_generators = {}, {}, []
        return None, [yaml_error_problem(file, exc, "")]
    for key, duplicate, first in loader.duplicate_keys:
        mark = duplicate.start_mark
        problems.append(Problem(file, mark.line + 1, mark.column + 1,
                                f"duplicate key {str(key)!r} (first at line {first.start_mark.line + 1}); YAML "
                                "would silently keep only the last one, so remove one of them"))
    assert isinstance(node, MappingNode) and isinstance(data, dict)
    header = header_problems(file, node, data)
    if header:
        return None, problems + header
    try:
        model = KeyStoreManifest.model_validate(data)
    except ValidationError as exc:
        return None, problems + validation_problems(file, node, exc)
    if problems:
        return None, problems
    mark = node.start_mark
    manifest = LoadedManifest(
        model=model, path=path, doc_index=index, line=mark.line + 1, col=mark.column + 1,
        manifest_dir=path.absolute().parent, root=root, region=model.spec.region or default_region, node=node)
    return manifest, []


def _is_symlink_loop(path: Path) -> bool:
    """Whether ``path`` is a symbolic link that leads back to itself (directly or through others)."""
    import errno

    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def _symlink_loop(path: Path) -> Problem:
    return Problem(str(path), None, None, "a symlink loop (the link leads back to itself); "
                                          "point the link at a manifest file or remove it")


def _manifest_files(directory: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
                if name == REPO_CONFIG_FILE and Path(dirpath) == directory:
                    continue  # the repository configuration (reconciler.manifest.repo_config), not a manifest
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(directory).parts)


def load(paths: Sequence[str | os.PathLike[str]], default_region: str | None = None) -> LoadResult:
    """Load and validate manifests from files and directories.

    A directory contributes every ``*.yaml`` / ``*.yml`` file below it (recursively, sorted,
    hidden entries skipped); its ``fromFile`` references must stay inside it. A file's root is
    its own directory. ``default_region`` (from --region / AWS_REGION / AWS_DEFAULT_REGION)
    applies to manifests without ``spec.region``. Never raises for a problem in the input.
    """
    problems: list[Problem] = []
    manifests: list[LoadedManifest] = []
    files: list[Path] = []
    seen: set[Path] = set()
    if not paths:
        problems.append(Problem("(arguments)", None, None, "no manifest file or directory given"))
    for given in paths:
        path = Path(given)
        try:
            if path.is_dir():
                found = _manifest_files(path)
                if not found:
                    problems.append(Problem(str(path), None, None, "no manifests found: the directory holds no "
                                                                   "*.yaml or *.yml files"))
                targets = [(f, path.absolute()) for f in found]
            elif path.is_file() and path.name == REPO_CONFIG_FILE:
                continue  # the repository configuration (reconciler.manifest.repo_config), not a manifest
            elif path.is_file():
                targets = [(path, path.absolute().parent)]
            elif _is_symlink_loop(path):
                if path.absolute() not in seen:
                    seen.add(path.absolute())
                    problems.append(_symlink_loop(path))
                continue
            elif path.exists() or path.is_symlink():
                problems.append(Problem(str(path), None, None, "not a regular file or directory"))
                continue
            else:
                problems.append(Problem(str(path), None, None, "no such file or directory"))
                continue
        except OSError as exc:
            problems.append(Problem(str(path), None, None, f"cannot read: {exc.strerror or exc}"))
            continue
        for file, root in targets:
            try:
                key = file.resolve()
            except (OSError, RuntimeError):  # RuntimeError: a symlink loop, before Python 3.13
                key = file.absolute()
                if _is_symlink_loop(file):
                    if key not in seen:
                        seen.add(key)
                        problems.append(_symlink_loop(file))
                    continue
            if key in seen:
                continue
            seen.add(key)
            files.append(file)
            try:
                loaded, file_problems = _load_file(file, root, default_region)
            except Exception as exc:  # a bug of ours must still not become a traceback for the user
                loaded, file_problems = [], [Problem(str(file), None, None,
                                                     f"internal error while loading ({type(exc).__name__}); "
                                                     "please report it")]
            manifests.extend(loaded)
            problems.extend(file_problems)

    from reconciler.manifest.checks import check_manifests

    problems.extend(check_manifests(manifests, default_region=default_region))
    return LoadResult(manifests=manifests, problems=problems, files=files)


def check_secrets(manifests: Iterable[LoadedManifest], *, allow_outside_root: bool = False) -> list[Problem]:
    """Resolve every credential of every ``present`` store, discard the values, and report each one
    that cannot be resolved or has the wrong format (a missing environment variable, a file
    outside the root, a password of the wrong length...). For ``plan`` to fail early."""
    problems: list[Problem] = []
    for manifest in manifests:
        if manifest.model.spec.state != "present":
            continue
        for field_path in _RESOLVABLE_NAMES:
            try:
                manifest._resolve(field_path, allow_outside_root)
            except SecretError as exc:
                line, col = manifest.locate(field_path)
                problems.append(Problem(str(manifest.path), line, col, str(exc), field_path))
    return problems


# --------------------------------------------------------------------------------------------
# Digest


def canonical_manifest(manifest: KeyStoreManifest | LoadedManifest) -> dict[str, Any]:
    """The JSON value a manifest contributes to :func:`digest`: its fields (secret references, never
    values), the effective region, keys sorted, unset optional fields left out."""
    model = manifest.model if isinstance(manifest, LoadedManifest) else manifest
    region = manifest.region if isinstance(manifest, LoadedManifest) else model.spec.region
    data = model.model_dump(mode="json", exclude_none=True)
    data["spec"]["keys"] = sorted(data["spec"]["keys"], key=lambda k: json.dumps(k, sort_keys=True))
    return {"region": region, "manifest": data}


def digest(manifests: Iterable[KeyStoreManifest | LoadedManifest]) -> str:
    """sha256 (hex) of the canonical JSON of the manifests: the same for the same desired state,
    whatever the file layout, document order or key order. Secret *references* are included,
    secret values never; the contents of fromFile files are not."""
    entries = sorted(json.dumps(canonical_manifest(m), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                     for m in manifests)
    return hashlib.sha256(("[" + ",".join(entries) + "]").encode("utf-8")).hexdigest()


__all__ = [
    "LoadResult",
    "LoadedManifest",
    "Problem",
    "canonical_manifest",
    "check_secrets",
    "digest",
    "format_field_path",
    "load",
    "parse_field_path",
]


def validate_paths(paths: Sequence[str], *, with_secrets: bool = False, allow_outside_root: bool = False,
                   default_region: str | None = None) -> tuple[list[Problem], int]:
    """``reconciler validate``: the problems and the number of manifests; ``with_secrets``
    also resolves every secret reference (and forgets it)."""
    result = load(paths, default_region=default_region)
    problems = list(result.problems)
    if not problems and with_secrets:
        problems = check_secrets(result.manifests, allow_outside_root=allow_outside_root)
    return problems, len(result.manifests)
