"""Text as a person reads it (what shows, what hides, when two names are one person) and text
that cannot be encoded or decoded as UTF-8, named where it breaks.

Shared by the audit log (reasons and actor names must not hide or forge a line), by serving (a
request text with nothing visible has nothing to classify; a body that is not UTF-8) and by the
batch reader (a file that is not UTF-8).
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


def unpaired_surrogate(text: str) -> int | None:
    """Position of the first lone UTF-16 surrogate in ``text``, or None.

    JSON's ``"\\ud800"`` escapes decode to such a character; UTF-8 cannot encode it and the
    tokenizer raises a TypeError on it, so text from JSON is checked before it gets that far.
    """
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        return err.start
    return None


def bad_utf8_byte(err: UnicodeDecodeError) -> str:
    """Where a UTF-8 decode failed, as ``byte 0xNN at offset N``: enough to find it in a hex editor."""
    return f"byte 0x{err.object[err.start]:02x} at offset {err.start}"
