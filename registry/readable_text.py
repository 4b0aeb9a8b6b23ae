"""Text as a person reads it: what shows, what hides, and when two names are one person.

Shared by the audit log (reasons and actor names must not hide or forge a line) and by serving
(a request text with nothing visible has nothing to classify).
"""

from __future__ import annotations

import unicodedata

# Line breaks, control and invisible format characters: they can forge a line or hide a difference.
_HIDDEN_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def has_visible_text(text: str) -> bool:
    """Whether ``text`` shows anything: a character that is printable and not whitespace."""
    return any(ch.isprintable() and not ch.isspace() for ch in text)


def control_characters(text: str) -> list[str]:
    """The line breaks, control and invisible format characters in ``text``, as U+XXXX, once each."""
    return sorted({f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in _HIDDEN_CATEGORIES})


def escape_control(text: str) -> str:
    """``text`` with each character ``control_characters`` names written as ``\\uXXXX``: one line, all visible."""
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _HIDDEN_CATEGORIES else ch for ch in text)


def same_person(a: str, b: str) -> bool:
    """Actor names compared as people read them: 'Alice' and 'alice' are one person to four-eyes."""
    return unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()
