"""Batch text made inert where people read it: a spreadsheet cell that runs nothing, Markdown that renders as text.

A batch's texts, labels and ids come from outside; written as they are, ``=HYPERLINK(...)`` in a
review CSV runs when a reviewer opens it in Excel, and ``<img src=x onerror=...>`` or a stray ``|``
in ``validation.md`` becomes markup or breaks the table it sits in.
"""

from __future__ import annotations

import html
import re

# Spreadsheets start a formula at these; tab and carriage return can smuggle one in front of it (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Markdown that would turn text into emphasis, code, links, headings or table cells.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]|#!])")
# What GitHub-flavoured Markdown turns into a link with no markup at all ("autolinks").
_BARE_LINK = re.compile(r"(:)(//)|\b(www)(\.)", re.IGNORECASE)


def spreadsheet_cell(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula; the apostrophe is not shown."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def markdown_text(text: str) -> str:
    """``text`` as plain Markdown text on one line: HTML escaped, Markdown syntax backslash-escaped,
    and bare URLs (``https://…``, ``www.…``) broken by an escape so they render as text, not links."""
    one_line = " ".join(text.splitlines())
    escaped = _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(one_line, quote=False))
    return _BARE_LINK.sub(lambda m: f"{m[1]}\\/\\/" if m[1] else f"{m[3]}\\.", escaped)
