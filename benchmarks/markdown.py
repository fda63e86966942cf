"""Generated sections of docs/performance.md: each benchmark owns the text between its markers

    <!-- BEGIN GENERATED: NAME (COMMAND) -->
    ...
    <!-- END GENERATED: NAME -->

and rewrites only that; a benchmark that writes the whole page keeps the other sections
(:func:`carry_sections`)."""

from __future__ import annotations

import re

_BLOCK = re.compile(r"<!-- BEGIN GENERATED: (?P<name>[\w-]+)[^>]*-->.*?<!-- END GENERATED: (?P=name) -->\n?", re.S)


def replace_section(text: str, name: str, body: str, command: str) -> str:
    """``text`` with the section ``name`` replaced by ``body`` (appended at the end if absent)."""
    block = f"<!-- BEGIN GENERATED: {name} ({command}) -->\n{body.rstrip()}\n<!-- END GENERATED: {name} -->\n"
    for match in _BLOCK.finditer(text):
        if match.group("name") == name:
            return text[:match.start()] + block + text[match.end():]
    return text.rstrip("\n") + "\n\n" + block if text.strip() else block


def carry_sections(old: str, new: str) -> str:
    """``new`` (a whole page) with the generated sections of ``old`` it does not have, at its end."""
    have = {m.group("name") for m in _BLOCK.finditer(new)}
    for match in _BLOCK.finditer(old):
        if match.group("name") not in have:
            new = new.rstrip("\n") + "\n\n" + match.group(0)
    return new
