"""The benchmarks' generated sections in docs/performance.md.

Each benchmark owns one section, between ``<!-- BEGIN GENERATED: NAME ... -->`` and
``<!-- END GENERATED: NAME -->``, and rewrites only that one: running one benchmark never clobbers
another's figures. A document that does not exist yet starts from ``performance.md.in``.
"""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "performance.md.in"


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- BEGIN GENERATED: {re.escape(name)}\b[^>]*-->\n)(.*?)(<!-- END GENERATED: "
                      rf"{re.escape(name)} -->)", re.S)


def write_section(doc: Path, name: str, body: str) -> None:
    """Replace section ``name`` of ``doc`` with ``body`` (a trailing newline is added)."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else TEMPLATE.read_text(encoding="utf-8")
    pattern = _pattern(name)
    if not pattern.search(text):
        raise SystemExit(f"{doc} has no '<!-- BEGIN GENERATED: {name} -->' ... '<!-- END GENERATED: {name} -->' "
                         f"markers; start from {TEMPLATE}")
    text = pattern.sub(lambda m: m.group(1) + body.rstrip("\n") + "\n" + m.group(3), text, count=1)
    doc.write_text(text, encoding="utf-8")
