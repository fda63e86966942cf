"""Escaping for what reaches a terminal or a markdown page.

Names, descriptions, aliases and error messages come from AWS (a store made by hand can be named
anything KMS accepts, newlines and escape sequences included) or from files. Every renderer
passes each such value through one of these functions, so no value can move the cursor, recolour
the terminal, forge a plan line, or add a heading, a link or an image to a pull request:

* :func:`printable` for plain text (terminal, logs): control and invisible format characters
  (C0, DEL, C1, bidirectional overrides, zero-width characters, lone surrogates) become visible
  escapes such as ``\\n`` or ``\\x1b``; everything else is left as it is.
* :func:`markdown` for markdown (plan summaries, pull-request comments): :func:`printable`, then a
  backslash before every character markdown or HTML gives a meaning to.
* :func:`fence` for a fenced code block that holds such values.

And how dates are written wherever the tool writes one (plans, status, progress): :func:`iso`,
UTC to the second, rounded up by :func:`ceil_seconds` where being early would mislead (a key's
deletion date, a re-run date).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that start
# emphasis, code, links, images, HTML, tables, autolinks or entities in the middle of a line
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&:\"'])")


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _unsafe(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("Cc", "Cf", "Cs", "Zl", "Zp")


def printable(value: object, *, keep_newlines: bool = False) -> str:
    """``value`` as text with every control or invisible format character made visible.

    ``keep_newlines`` keeps line breaks (for a message of several lines built by this tool, such
    as an error that lists what changed); other control characters are still escaped."""
    text = str(value)
    if text.isprintable() and not keep_newlines:
        return text
    out = []
    for ch in text:
        if keep_newlines and ch == "\n":
            out.append(ch)
        elif _unsafe(ch):
            out.append(_escape_char(ch))
        else:
            out.append(ch)
    return "".join(out)


def markdown(value: object) -> str:
    """``value`` as literal markdown text (inline: a table cell, a list item, a paragraph)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", printable(value))


def fence(body: str, info: str = "") -> list[str]:
    """A fenced code block around ``body`` whose fence no line of ``body`` can close."""
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    marks = "`" * max(3, longest + 1)
    return [marks + info, body, marks]


def iso(value: datetime | None) -> str | None:
    """UTC, whole seconds: 2026-12-05T10:00:00Z."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def ceil_seconds(value: datetime) -> datetime:
    """Round up to the whole second, so a date printed in whole seconds is never early."""
    return value if value.microsecond == 0 else value.replace(microsecond=0) + timedelta(seconds=1)


def parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
