"""YAML with positions: the safe loaders (duplicate keys recorded, not silently dropped; no tags
that build objects; lone surrogates refused; alias expansion bounded), and field paths such as
``spec.keys[0].alias`` walked back to the node that wrote them, for FILE:LINE:COL messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Union

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_EXPANDED_NODES = 100_000  # guards against "billion laughs" alias bombs

Loc = tuple[Union[str, int], ...]


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
class Found:
    path: list[str | int]  # the part of the loc that exists in the document
    value: Node  # the node at that path (the nearest existing one)
    key: Node | None  # its key node, when it is a mapping entry
    complete: bool  # whether every part of the loc was found


def mapping_entry(node: MappingNode, part: str | int) -> tuple[Node, Node] | None:
    text = str(part)
    for key, value in reversed(node.value):  # the last entry wins, as in the loaded data
        if isinstance(key, ScalarNode) and key.value == text:
            return key, value
    return None


def walk(root: Node, loc: Loc) -> Found:
    """Follow a pydantic ``loc`` through the YAML nodes, skipping parts that are not in the
    document (union tags, the name of a missing field)."""
    found = Found([], root, None, True)
    for part in loc:
        if part == "[key]":  # pydantic's marker for an error in a dict key
            if found.key is not None:
                found.value = found.key
            continue
        node = found.value
        if isinstance(node, MappingNode):
            entry = mapping_entry(node, part)
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


class ManifestLoader(_DuplicateKeys, yaml.SafeLoader):
    """PyYAML's SafeLoader that also records duplicate mapping keys instead of keeping the last."""


# libyaml's parser, when PyYAML has it: the same documents, ten times faster (a fleet of thousands
# of keys loads in a fraction of a second). A file it cannot parse is parsed again by the
# pure-Python loader, whose error messages the problems quote.
FastManifestLoader = (type("FastManifestLoader", (_DuplicateKeys, yaml.CSafeLoader), {})
                       if getattr(yaml, "__with_libyaml__", False) else None)

# A plain "=" resolves to the YAML 1.1 "value" tag, which SafeLoader cannot construct: read it as text.
for _loader_class in (ManifestLoader, FastManifestLoader):
    if _loader_class is not None:
        _loader_class.add_constructor("tag:yaml.org,2002:value", yaml.SafeLoader.construct_yaml_str)


_YAML_TYPE_TAGS = {"tag:yaml.org,2002:" + t for t in ("binary", "set", "omap", "pairs", "yaml")}


def _pretty_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def node_problems(root: Node) -> list[tuple[Node, str]]:
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
            elif node.tag in _YAML_TYPE_TAGS:
                out.append((node, f"unsupported YAML tag {tag}: manifests are plain YAML (mappings, lists, "
                                  "strings, numbers, booleans)"))
            else:  # not shown: a value written inline that starts with '!' (a password) is read as a tag
                out.append((node, "unsupported YAML tag: a value that starts with '!' is read as a tag, so quote "
                                  "it (the tag is not shown); manifests are plain YAML (mappings, lists, strings, "
                                  "numbers, booleans)"))
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


class TooLarge(Exception):
    pass


class Recursive(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


def check_expansion(root: Node, limit: int = MAX_EXPANDED_NODES) -> None:
    """Raise if aliases make the document expand beyond ``limit`` nodes, or refer to themselves."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise Recursive(node)
        total = 1
        if isinstance(node, (SequenceNode, MappingNode)):
            active.add(id(node))
            children = node.value if isinstance(node, SequenceNode) else [n for pair in node.value for n in pair]
            for child in children:
                total += size(child)
                if total > limit:
                    raise TooLarge()
            active.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


