"""The benchmarks' generated sections of docs/performance.md.

The document is written by hand around its figures; each benchmark owns one section of it, between
``<!-- BEGIN GENERATED: NAME ... -->`` and ``<!-- END GENERATED: NAME -->`` (the markers of the
README's generated sections, :mod:`reconciler.docs`), and rewrites only that one, so running one
benchmark never clobbers another's figures or the prose.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.docs import replace_section


def write_section(doc: Path, name: str, body: str) -> None:
    """Replace section ``name`` of ``doc`` with ``body`` (a trailing newline is added)."""
    try:
        text = replace_section(doc.read_text(encoding="utf-8"), name, body.rstrip("\n") + "\n")
    except ValueError as exc:
        raise SystemExit(f"{doc}: {exc}") from None
    doc.write_text(text, encoding="utf-8")
