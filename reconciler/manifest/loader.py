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

import difflib
import hashlib
import json
import os
import re
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.manifest.model import (
    API_VERSION,
    KEY_STORE_PASSWORD,
    KIND,
    SENSITIVE_FIELDS,
    TRUST_ANCHOR_CERTIFICATE,
    XKS_ACCESS_KEY_ID,
    XKS_SECRET_ACCESS_KEY,
    KeyStoreManifest,
    KmsString,
    yaml_type_name,
)
from reconciler.manifest.secrets import SecretError, SensitiveStr, resolve_secret

MANIFEST_SUFFIXES = (".yaml", ".yml")
MAX_EXPANDED_NODES = 100_000  # guards against "billion laughs" alias bombs
# a KeyStore manifest is a few KB (a store with 1,000 keys is about 150 KB): a larger file is a
# mistake (a log, a dump) and reading and parsing it would take seconds to minutes
MAX_MANIFEST_BYTES = 1024 * 1024

Loc = tuple[Union[str, int], ...]


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the manifests, at a place in a file.

    ``line`` and ``col`` are 1-based; they are ``None`` only when there is no place to point at
    (a missing path, an unreadable file). ``field`` is the dotted field path when known.
    """

    file: str
    line: int | None
    col: int | None
    message: str
    field: str | None = None

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col or 1}: {self.message}"


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
        found = _walk(self.node, loc)
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
# Field paths


def parse_field_path(text: str) -> Loc:
    """``"spec.keys[0].alias"`` -> ``("spec", "keys", 0, "alias")``."""
    out: list[str | int] = []
    for part in re.finditer(r"([^.\[\]]+)|\[(\d+)\]|\['([^']*)'\]", text):
        name, index, quoted = part.groups()
        out.append(int(index) if index is not None else (name if name is not None else quoted))
    return tuple(out)


def format_field_path(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            out += ("." if out else "") + part
        else:
            out += f"[{part!r}]"
    return out


@dataclass
class _Found:
    path: list[str | int]  # the part of the loc that exists in the document
    value: Node  # the node at that path (the nearest existing one)
    key: Node | None  # its key node, when it is a mapping entry
    complete: bool  # whether every part of the loc was found


def _mapping_entry(node: MappingNode, part: str | int) -> tuple[Node, Node] | None:
    text = str(part)
    for key, value in reversed(node.value):  # the last entry wins, as in the loaded data
        if isinstance(key, ScalarNode) and key.value == text:
            return key, value
    return None


def _walk(root: Node, loc: Loc) -> _Found:
    """Follow a pydantic ``loc`` through the YAML nodes, skipping parts that are not in the
    document (union tags, the name of a missing field)."""
    found = _Found([], root, None, True)
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in a dict key
            if found.key is not None:
                found.value = found.key
            continue
        node = found.value
        if isinstance(node, MappingNode):
            entry = _mapping_entry(node, part)
            if entry is not None:
                found.key, found.value = entry
                found.path.append(part)
                continue
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            found.key, found.value = None, node.value[part]
            found.path.append(part)
            continue
        found.complete = False
    return found


# --------------------------------------------------------------------------------------------
# Safe YAML with duplicate-key detection

_STANDARD_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge",
                                       "timestamp", "value")
}


class _DuplicateKeys:
    """Records duplicate mapping keys instead of keeping the last (mixed into a SafeLoader)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[Any, Node, Node]] = []  # (key, duplicate node, first node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        if isinstance(node, MappingNode):
            first: dict[Any, Node] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, ScalarNode):
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in first:
                        self.duplicate_keys.append((key, key_node, first[key]))
                    else:
                        first[key] = key_node
                except TypeError:  # unhashable: the constructor reports it
                    continue
        return super().construct_mapping(node, deep=deep)


class _ManifestLoader(_DuplicateKeys, yaml.SafeLoader):
    """PyYAML's SafeLoader that also records duplicate mapping keys instead of keeping the last."""


# libyaml's parser, when PyYAML has it: the same documents, ten times faster (a fleet of thousands
# of keys loads in a fraction of a second). A file it cannot parse is parsed again by the
# pure-Python loader, whose error messages the problems quote.
_FastManifestLoader = (type("_FastManifestLoader", (_DuplicateKeys, yaml.CSafeLoader), {})
                       if getattr(yaml, "__with_libyaml__", False) else None)

# A plain "=" resolves to the YAML 1.1 "value" tag, which SafeLoader cannot construct: read it as text.
for _loader_class in (_ManifestLoader, _FastManifestLoader):
    if _loader_class is not None:
        _loader_class.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


def _pretty_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def _node_problems(root: Node) -> list[tuple[Node, str]]:
    out: list[tuple[Node, str]] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in _STANDARD_TAGS:
            tag = _pretty_tag(node.tag)
            if "python/" in node.tag:
                out.append((node, f"YAML tag {tag} is not allowed: manifests are loaded safely and tags that "
                                  "build Python objects are refused"))
            else:
                out.append((node, f"unsupported YAML tag {tag}: manifests are plain YAML (mappings, lists, "
                                  "strings, numbers, booleans)"))
        if isinstance(node, ScalarNode) and isinstance(node.value, str) and _SURROGATE.search(node.value):
            char = _SURROGATE.search(node.value).group()
            out.append((node, f"the text holds a lone UTF-16 surrogate (\\u{ord(char):04x}, written as an escape), "
                              "which is not a Unicode character and cannot be sent to KMS as UTF-8; write the "
                              "character itself, or its pair of surrogates as one escape (\\U0001F600)"))
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
    return out


_SURROGATE = re.compile("[\ud800-\udfff]")


class _TooLarge(Exception):
    pass


class _Recursive(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


def _check_expansion(root: Node, limit: int = MAX_EXPANDED_NODES) -> None:
    """Raise if aliases make the document expand beyond ``limit`` nodes, or refer to themselves."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise _Recursive(node)
        total = 1
        if isinstance(node, (SequenceNode, MappingNode)):
            active.add(id(node))
            children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
            for child in children:
                total += size(child)
                if total > limit:
                    raise _TooLarge()
            active.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


# --------------------------------------------------------------------------------------------
# Messages


def _show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return str(value) if not isinstance(value, (dict, list)) else ""


def _got(value: Any, sensitive: bool) -> str:
    kind = yaml_type_name(value)
    shown = "" if sensitive or isinstance(value, (dict, list)) or value is None else _show_value(value)
    return f"got {kind}" + (f" ({shown})" if shown else "")


_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "literal_or_ref": "a string or a reference {fromEnv: NAME} / {fromFile: PATH}",
}


def _annotation_at(loc: Loc) -> Any:
    """The annotation of the last model field named in ``loc``."""
    model: type[BaseModel] | None = KeyStoreManifest
    annotation: Any = None
    for part in loc:
        if model is not None and isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            model = _model_in(annotation)
    return annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _model_for_mapping(loc: Loc) -> type[BaseModel] | None:
    """The model a mapping at ``loc`` is validated against (``()`` is the document)."""
    model: type[BaseModel] | None = KeyStoreManifest
    for part in loc:
        if model is not None and isinstance(part, str) and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation)
    return model


def _literals(annotation: Any) -> list[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    out: list[str] = []
    for arg in typing.get_args(annotation):
        out.extend(_literals(arg))
    return out


def _suggest(word: str, choices: Sequence[str]) -> str:
    for choice in choices:
        if choice.lower() == word.lower():
            return choice
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.7)
    return close[0] if close else ""


def _message(error: dict[str, Any], found: _Found) -> tuple[str, str]:
    """A human message for one pydantic error: (field path shown, message)."""
    kind = error["type"]
    loc: Loc = error["loc"]
    value = error.get("input")
    sensitive = any(part in SENSITIVE_FIELDS for part in loc)
    path = format_field_path(found.path)

    if kind == "missing":
        name = str(loc[-1])
        why = (error.get("ctx") or {}).get("why")
        return path, f"missing required field {name!r}" + (f" ({why})" if why else "")
    if kind == "extra_forbidden":
        name = str(found.path[-1]) if found.complete and found.path else str(loc[-1])
        model = _model_for_mapping(loc[:-1])
        allowed = list(model.model_fields) if model else []
        hint = _suggest(name, allowed)
        parent = format_field_path(found.path[:-1]) if found.complete else path
        text = f"unknown field {name!r}" + (f" (did you mean {hint!r}?)" if hint else "")
        if allowed:
            text += f"; allowed fields{' of ' + parent if parent else ''}: {', '.join(allowed)}"
        return path, text
    if kind == "literal_error":
        choices = _literals(_annotation_at(loc))
        text = f"must be one of {', '.join(choices)}; {_got(value, sensitive)}"
        hint = _suggest(str(value), choices) if isinstance(value, str) else ""
        if hint:
            text += f" (did you mean {hint}?)"
        elif isinstance(value, bool):
            text += "; YAML reads yes/no/on/off/true/false as booleans, so quote it"
        return path, text
    if kind in _EXPECTED:
        text = f"expected {_EXPECTED[kind]}, {_got(value, sensitive)}"
        if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
            text += "; quote it to make it a string" + (
                "" if sensitive or not isinstance(loc[-1], str) else f", e.g. {loc[-1]}: \"{value}\"")
        elif kind == "string_type" and isinstance(value, bool):
            text += "; YAML reads yes/no/on/off/true/false as booleans, so quote it"
        elif kind == "string_type" and yaml_type_name(value) == "a date":
            text += "; quote it to make it a string"
        elif kind == "bool_type" and isinstance(value, str):
            text += "; write true or false without quotes"
        return path, text
    # Our own error types carry complete messages (already without secret values).
    return path, str(error.get("msg", kind))


def _anchor_node(error: dict[str, Any], found: _Found) -> Node:
    """Where a problem points: the key for unknown/disallowed fields and dict keys, the parent
    mapping's key for a missing field, else the value."""
    kind = error["type"]
    if kind == "missing":
        return found.key if found.key is not None else found.value
    if kind in ("extra_forbidden", "not_allowed", "empty") and found.key is not None:
        return found.key
    return found.value


# --------------------------------------------------------------------------------------------
# Loading


def _mark_of(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def _yaml_error_problem(file: str, exc: yaml.YAMLError, text: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "syntax error"
        message = f"invalid YAML: {problem}"
        if exc.context:
            message += f" ({exc.context}"
            if exc.context_mark is not None and exc.problem_mark is not None and \
                    exc.context_mark.line != exc.problem_mark.line:
                message += f" started at line {exc.context_mark.line + 1}"
            message += ")"
        if "'\\t'" in problem:
            message += "; indent with spaces, YAML does not allow tabs"
        if mark is None:
            return Problem(file, None, None, message)
        return Problem(file, mark.line + 1, mark.column + 1, message)
    if isinstance(exc, yaml.reader.ReaderError):
        line, col = _mark_of(text, exc.position)
        character = chr(exc.character) if isinstance(exc.character, int) else exc.character
        return Problem(file, line, col, f"invalid YAML: character {character!r} is not allowed in YAML "
                                        "(remove control characters)")
    return Problem(file, None, None, f"invalid YAML: {exc}")


def _document_problems(file: str, node: Node, index: int) -> list[Problem]:
    """Problems that stop a document from being a mapping we can validate."""
    mark = node.start_mark
    where = f"document {index + 1}"
    if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return [Problem(file, mark.line + 1, mark.column + 1,
                        f"{where} is empty; expected a KeyStore manifest (apiVersion: {API_VERSION}, "
                        f"kind: {KIND}, metadata, spec), or remove the extra '---'")]
    if not isinstance(node, MappingNode):
        kind = "a list" if isinstance(node, SequenceNode) else "a single value"
        return [Problem(file, mark.line + 1, mark.column + 1,
                        f"{where} is {kind}, not a mapping; a manifest is a mapping that starts with "
                        f"apiVersion: {API_VERSION}")]
    return []


def _header_problems(file: str, node: MappingNode, data: dict[Any, Any]) -> list[Problem]:
    """apiVersion and kind first: a document of another kind is not validated any further."""
    out = []
    for name, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if name not in data:
            mark = node.start_mark
            out.append(Problem(file, mark.line + 1, mark.column + 1,
                               f"missing required field {name!r} (expected {name}: {expected})", name))
        elif data[name] != expected:
            found = _walk(node, (name,))
            mark = found.value.start_mark
            extra = "; this tool reads only KeyStore documents" if name == "kind" else ""
            out.append(Problem(file, mark.line + 1, mark.column + 1,
                               f"{name}: must be {expected!r}, {_got(data[name], False)}{extra}", name))
    return out


def _validation_problems(file: str, node: Node, exc: ValidationError) -> list[Problem]:
    out = []
    for error in exc.errors(include_url=False):
        found = _walk(node, error["loc"])
        path, text = _message(error, found)
        anchor = _anchor_node(error, found).start_mark
        message = f"{path}: {text}" if path else text
        out.append(Problem(file, anchor.line + 1, anchor.column + 1, message, path or None))
    return out


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

    if _FastManifestLoader is not None:
        try:
            return _parse_file(_FastManifestLoader, file, path, root, text, default_region, fast=True)
        except yaml.YAMLError:
            pass  # parsed again below, for the pure-Python loader's error message
    return _parse_file(_ManifestLoader, file, path, root, text, default_region)


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
        problems.append(_yaml_error_problem(file, exc, text))
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


def _load_document(loader: _ManifestLoader, file: str, path: Path, root: Path, node: Node, index: int,
                   default_region: str | None) -> tuple[LoadedManifest | None, list[Problem]]:
    problems = _document_problems(file, node, index)
    if problems:
        return None, problems
    for bad, message in _node_problems(node):
        problems.append(Problem(file, bad.start_mark.line + 1, bad.start_mark.column + 1, message))
    if problems:
        return None, problems
    try:
        _check_expansion(node)
    except _TooLarge:
        return None, [Problem(file, node.start_mark.line + 1, node.start_mark.column + 1,
                              f"document {index + 1} has more than {MAX_EXPANDED_NODES:,} YAML nodes (counting "
                              "each use of an alias in full); a KeyStore manifest has a few hundred: is this a "
                              "manifest? Remove aliases that repeat large parts, or split the document")]
    except _Recursive as exc:
        mark = exc.node.start_mark
        return None, [Problem(file, mark.line + 1, mark.column + 1, "a YAML alias refers to the node that "
                                                                    "contains it (recursive data)")]
    loader.duplicate_keys.clear()
    try:
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:  # e.g. an unhashable key, a merge of a non-mapping
        loader.constructed_objects, loader.recursive_objects, loader.state_generators = {}, {}, []
        return None, [_yaml_error_problem(file, exc, "")]
    for key, duplicate, first in loader.duplicate_keys:
        mark = duplicate.start_mark
        problems.append(Problem(file, mark.line + 1, mark.column + 1,
                                f"duplicate key {str(key)!r} (first at line {first.start_mark.line + 1}); YAML "
                                "would silently keep only the last one, so remove one of them"))
    assert isinstance(node, MappingNode) and isinstance(data, dict)
    header = _header_problems(file, node, data)
    if header:
        return None, problems + header
    try:
        model = KeyStoreManifest.model_validate(data)
    except ValidationError as exc:
        return None, problems + _validation_problems(file, node, exc)
    if problems:
        return None, problems
    mark = node.start_mark
    manifest = LoadedManifest(
        model=model, path=path, doc_index=index, line=mark.line + 1, col=mark.column + 1,
        manifest_dir=path.absolute().parent, root=root, region=model.spec.region or default_region, node=node)
    return manifest, []


def _manifest_files(directory: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.endswith(MANIFEST_SUFFIXES) and not name.startswith("."):
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
            elif path.is_file():
                targets = [(path, path.absolute().parent)]
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
            key = file.resolve()
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
