"""A small safe YAML loader that remembers where each value was written.

:func:`load_yaml` turns one YAML document into plain Python data (mappings, lists, strings,
numbers, booleans, null) and a table of positions, so that a problem found later (an unknown
field, a wrong value) is reported as ``FILE:LINE:COL: message``. It refuses what a configuration
file has no use for, each as a :class:`Problem`: YAML tags that build objects, duplicate keys,
merge keys, several documents, and aliases that expand beyond :data:`MAX_NODES` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_NODES = 10_000  # a proxy configuration has tens of nodes; aliases must not expand it further

Path = tuple[Union[str, int], ...]

_SCALAR_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "timestamp")}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file, at a 1-based line and column (None: the whole file)."""

    file: str
    line: int | None
    col: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col or 1}: {self.message}"


class ConfigError(ValueError):
    """Every problem found in a configuration, one per line of the message."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Document:
    """The data of one YAML document and where each of its values (and mapping keys) starts."""

    file: str
    data: Any = None
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """The (line, col) of ``path`` (of its key when ``key``), else of its nearest ancestor."""
        path = tuple(path)
        while path:
            table = self.keys if key and path in self.keys else self.values
            if path in table:
                return table[path]
            path = path[:-1]
        return self.values.get((), (1, 1))

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        line, col = self.locate(path, key=key)
        return Problem(self.file, line, col, message)


def _tag(node: Node) -> str:
    if node.tag in {"tag:yaml.org,2002:" + t for t in ("map", "seq", "binary", "set", "omap", "pairs", "merge")}:
        return node.tag.replace("tag:yaml.org,2002:", "!!")
    return "(a value starting with '!' is read as a tag: quote it; not shown)"  # it may be a secret key


def _mark(node: Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    def __init__(self, doc: Document, loader: yaml.SafeLoader) -> None:
        self.doc = doc
        self.loader = loader
        self.problems: list[Problem] = []
        self.count = 0
        self.active: set[int] = set()

    def fail(self, node: Node, message: str) -> None:
        line, col = _mark(node)
        self.problems.append(Problem(self.doc.file, line, col, message))

    def convert(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLarge()
        self.doc.values[path] = _mark(node)
        if isinstance(node, ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                self.fail(node, f"unsupported YAML tag {_tag(node)}: the configuration is plain YAML")
                return None
            return self.loader.construct_object(node, deep=True)
        if id(node) in self.active:
            self.fail(node, "an alias refers to the node that contains it")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode) and node.tag == "tag:yaml.org,2002:map":
                return self.mapping(node, path)
            self.fail(node, f"unsupported YAML tag {_tag(node)}: the configuration is plain YAML")
            return None
        finally:
            self.active.discard(id(node))

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                self.fail(key_node, "only plain keys are allowed here (no merge keys, no complex keys)")
                continue
            key = str(self.loader.construct_object(key_node, deep=True))
            if key in out:
                first = self.doc.keys[path + (key,)][0]
                self.fail(key_node, f"duplicate key {key!r} (first written on line {first})")
                continue
            self.doc.keys[path + (key,)] = _mark(key_node)
            out[key] = self.convert(value_node, path + (key,))
        return out


class _TooLarge(Exception):
    pass


def load_yaml(text: str, file: str) -> Document:
    """Parse ``text`` (the content of ``file``) into a :class:`Document`; raise :class:`ConfigError`."""
    doc = Document(file)
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            converter = _Converter(doc, loader)
            try:
                doc.data = converter.convert(node, ())
            except _TooLarge:
                raise ConfigError([Problem(file, None, None, f"the document expands beyond {MAX_NODES} nodes "
                                                             "(aliases); write it out plainly")]) from None
            if converter.problems:
                raise ConfigError(converter.problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # PyYAML quotes the alias or tag it could not resolve: '*secret' and '!secret' (an inline
        # secret key) would be echoed; say what happened without the name
        problem = exc.problem or ""
        if problem.startswith("found undefined alias"):
            problem = "found an undefined alias (a value starting with '*' is read as one: quote it; not shown)"
        elif problem.startswith(("found undefined tag handle", "could not determine a constructor")):
            problem = "found an unknown tag (a value starting with '!' is read as one: quote it; not shown)"
        parts = [part for part in (exc.context, problem) if part]
        message = "invalid YAML: " + (", ".join(parts) if parts else "syntax error")
        if mark is None:
            raise ConfigError([Problem(file, None, None, message)]) from None
        raise ConfigError([Problem(file, mark.line + 1, mark.column + 1, message)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, None, None, f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return doc
