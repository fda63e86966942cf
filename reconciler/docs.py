"""The README's generated sections, so they cannot drift from the code.

* ``manifest-reference``: every manifest field, from the JSON Schema that the models generate
  (:func:`reconciler.manifest.schema.manifest_json_schema`): path, type, default, description;
* ``troubleshooting``: every ConnectionErrorCode and its fix, from
  :data:`reconciler.aws.connection_errors.FIXES` (the same text ``plan`` and ``status`` print).

Each section sits in the README between ``<!-- BEGIN GENERATED: NAME ... -->`` and
``<!-- END GENERATED: NAME -->``; ``tests/day2/test_readme.py`` fails when one differs. The same
command also copies the example manifests (``manifests/``) into the package
(``reconciler/examples/manifests/``, which ``reconciler demo`` uses from any directory). Regenerate::

    python -m reconciler.docs            # rewrite README.md's generated sections, copy the examples
    python -m reconciler.docs --check    # exit 1 if either is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

REGENERATE = "python -m reconciler.docs"
SECRET_REF = "SecretRef"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: str) -> str:
    return f"`{text}`"


def _describe(prop: dict[str, Any]) -> tuple[str, str | None, bool]:
    """(type text, the $defs model it opens, whether it is a list of them)."""
    if "anyOf" in prop:
        options = [o for o in prop["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            return _describe({**options[0]})
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[-1]
        if name == SECRET_REF:
            return "reference only: `{fromEnv: NAME}` or `{fromFile: PATH}`", None, False
        return "mapping", name, False
    if "oneOf" in prop:
        parts = []
        for option in prop["oneOf"]:
            if option.get("$ref", "").endswith("/" + SECRET_REF):
                parts.append("`{fromEnv: NAME}` or `{fromFile: PATH}`")
            else:
                parts.append(_describe(option)[0])
        return ", or ".join(parts), None, False
    if "const" in prop:
        return _code(prop["const"]), None, False
    if "enum" in prop:
        return " | ".join(_code(v) for v in prop["enum"]), None, False
    kind = prop.get("type")
    if kind == "array":
        text, child, _ = _describe(prop.get("items", {}))
        return ("list of mappings" if child else f"list of {text}"), child, True
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return "mapping of string to string", None, False
    if kind == "integer" and "minimum" in prop and "maximum" in prop:
        return f"integer, {prop['minimum']}-{prop['maximum']}", None, False
    return kind or "any", None, False


def _default(prop: dict[str, Any], kind: str) -> str:
    if "default" not in prop:
        if kind.startswith("list"):
            return "`[]`"
        if kind.startswith("mapping of"):
            return "`{}`"
        return ""
    value = prop["default"]
    if value is None:
        return ""
    return _code(json.dumps(value))


def reference_rows(schema: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(field path, type, required, default, description) for every manifest field, in order."""
    defs = schema.get("$defs", {})
    rows: list[tuple[str, str, str, str, str]] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        required = set(node.get("required", []))
        for name, prop in node.get("properties", {}).items():
            path = f"{prefix}.{name}" if prefix else name
            kind, child, is_list = _describe(prop)
            rows.append((path, kind, "yes" if name in required else "", _default(prop, kind),
                         prop.get("description", "")))
            if child:
                walk(defs[child], path + ("[]" if is_list else ""))

    walk(schema, "")
    return rows


def manifest_reference() -> str:
    from reconciler.manifest.schema import manifest_json_schema

    schema = manifest_json_schema()
    lines = ["| field | type | required | default | description |", "|---|---|---|---|---|"]
    for path, kind, required, default, description in reference_rows(schema):
        lines.append(f"| `{path}` | {_cell(kind)} | {required} | {_cell(default)} | {_cell(description)} |")
    ref = schema["$defs"][SECRET_REF]
    lines += ["", "A reference (`{fromEnv: NAME}` or `{fromFile: PATH}`) sets exactly one of:", "",
              "| key | description |", "|---|---|"]
    for name, prop in ref["properties"].items():
        lines.append(f"| `{name}` | {_cell(prop.get('description', ''))} |")
    return "\n".join(lines) + "\n"


def troubleshooting() -> str:
    from reconciler.aws.connection_errors import FIXES

    lines = ["| ConnectionErrorCode | what to do |", "|---|---|"]
    for code, fix in FIXES.items():
        text = fix[0].upper() + fix[1:]
        lines.append(f"| `{code}` | {_cell(text)}. |")
    return "\n".join(lines) + "\n"


SECTIONS: dict[str, Callable[[], str]] = {
    "manifest-reference": manifest_reference,
    "troubleshooting": troubleshooting,
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(name)}\b[^>]*-->\n)(.*?)(<!-- END GENERATED: "
                      rf"{re.escape(name)} -->)", re.S)


def section(text: str, name: str) -> str | None:
    """The body of generated section ``name`` in ``text`` (None if the markers are missing)."""
    match = _pattern(name).search(text)
    return None if match is None else match.group(2)


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the body of generated section ``name`` replaced (ValueError without its markers)."""
    pattern = _pattern(name)
    if not pattern.search(text):
        raise ValueError(f"no '<!-- BEGIN GENERATED: {name} -->' ... '<!-- END GENERATED: {name} -->' markers")
    return pattern.sub(lambda m: m.group(1) + body + m.group(3), text, count=1)


def regenerate(text: str) -> str:
    for name, make in SECTIONS.items():
        text = replace_section(text, name, make())
    return text


PACKAGED_EXAMPLES = Path(__file__).resolve().parent / "examples" / "manifests"


def example_files(root: Path) -> dict[str, bytes]:
    """Relative path -> content of every file below ``root``."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def sync_examples(source: Path, target: Path = PACKAGED_EXAMPLES) -> bool:
    """Make ``target`` an exact copy of ``source``; True if it changed."""
    import shutil

    if example_files(source) == example_files(target):
        return False
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reconciler.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--readme", default="README.md", help="the README to update (default: README.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the generated sections are out of date")
    parser.add_argument("--examples", default="manifests", help="the example manifests to copy into the package "
                        "(default: manifests; '' to skip)")
    args = parser.parse_args(argv)
    path = Path(args.readme)
    current = path.read_text(encoding="utf-8")
    updated = regenerate(current)
    examples = Path(args.examples) if args.examples else None
    if examples is not None and not any(examples.glob("*.y*ml")):
        print(f"{examples}: no example manifests there; run from the repository's root, or pass --examples",
              file=sys.stderr)
        return 1
    if args.check:
        stale = examples is not None and example_files(examples) != example_files(PACKAGED_EXAMPLES)
        if stale:
            print(f"{PACKAGED_EXAMPLES} differs from {examples}; run: {REGENERATE}", file=sys.stderr)
        if updated != current:
            print(f"{path}: generated sections are out of date; run: {REGENERATE}", file=sys.stderr)
            return 1
        if stale:
            return 1
        print(f"{path}: generated sections are up to date")
        return 0
    if examples is not None and sync_examples(examples):
        print(f"{PACKAGED_EXAMPLES}: copied from {examples}")
    if updated != current:
        path.write_text(updated, encoding="utf-8")
        print(f"{path}: generated sections updated")
    else:
        print(f"{path}: already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
