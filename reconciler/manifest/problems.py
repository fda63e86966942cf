"""Problems: what is wrong with the manifests, at a place in a file, in words a user can act on
(pydantic's and PyYAML's errors translated: the field, what was expected, what was found, a
suggestion for a misspelt name)."""

from __future__ import annotations

import difflib
import typing
from dataclasses import dataclass
from typing import Any, Sequence

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.manifest.model import API_VERSION, KIND, SENSITIVE_FIELDS, KeyStoreManifest, yaml_type_name
from reconciler.manifest.yaml_nodes import Found, Loc, format_field_path, walk


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


def got_text(value: Any, sensitive: bool) -> str:
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


def _message(error: dict[str, Any], found: Found) -> tuple[str, str]:
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
        text = f"must be one of {', '.join(choices)}; {got_text(value, sensitive)}"
        hint = _suggest(str(value), choices) if isinstance(value, str) else ""
        if hint:
            text += f" (did you mean {hint}?)"
        elif isinstance(value, bool):
            text += "; YAML reads yes/no/on/off/true/false as booleans, so quote it"
        return path, text
    if kind in _EXPECTED:
        text = f"expected {_EXPECTED[kind]}, {got_text(value, sensitive)}"
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


def _anchor_node(error: dict[str, Any], found: Found) -> Node:
    """Where a problem points: the key for unknown/disallowed fields and dict keys, the parent
    mapping's key for a missing field, else the value."""
    kind = error["type"]
    if kind == "missing":
        return found.key if found.key is not None else found.value
    if kind in ("extra_forbidden", "not_allowed", "empty") and found.key is not None:
        return found.key
    return found.value


def _mark_of(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return line, col


def _unquoted(problem: str) -> str:
    """PyYAML's problem text, without the text it quotes from the document where that text can be
    a secret written inline: ``*Hunter2`` is read as an alias named Hunter2, ``!Hunter2`` as a tag."""
    if problem.startswith("found undefined alias"):
        return ("found an undefined alias: a value that starts with '*' is read as a YAML alias; quote it, or "
                "reference secrets with {fromEnv: NAME} / {fromFile: PATH} (the name is not shown)")
    if problem.startswith("found undefined tag handle") or problem.startswith("could not determine a constructor"):
        return ("found an unknown YAML tag: a value that starts with '!' is read as a tag; quote it "
                "(the tag is not shown)")
    return problem


def yaml_error_problem(file: str, exc: yaml.YAMLError, text: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = _unquoted(exc.problem or "syntax error")
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


def document_problems(file: str, node: Node, index: int) -> list[Problem]:
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


def header_problems(file: str, node: MappingNode, data: dict[Any, Any]) -> list[Problem]:
    """apiVersion and kind first: a document of another kind is not validated any further."""
    out = []
    for name, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if name not in data:
            mark = node.start_mark
            out.append(Problem(file, mark.line + 1, mark.column + 1,
                               f"missing required field {name!r} (expected {name}: {expected})", name))
        elif data[name] != expected:
            found = walk(node, (name,))
            mark = found.value.start_mark
            extra = "; this tool reads only KeyStore documents" if name == "kind" else ""
            out.append(Problem(file, mark.line + 1, mark.column + 1,
                               f"{name}: must be {expected!r}, {got_text(data[name], False)}{extra}", name))
    return out


def validation_problems(file: str, node: Node, exc: ValidationError) -> list[Problem]:
    out = []
    for error in exc.errors(include_url=False):
        found = walk(node, error["loc"])
        path, text = _message(error, found)
        anchor = _anchor_node(error, found).start_mark
        message = f"{path}: {text}" if path else text
        out.append(Problem(file, anchor.line + 1, anchor.column + 1, message, path or None))
    return out
