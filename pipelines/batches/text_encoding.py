"""Which legacy Japanese encoding a non-UTF-8 batch file is in, and checking an ``--encoding`` name.

Japanese Excel saves "CSV" as Shift_JIS (Windows code page 932) unless "CSV UTF-8" is chosen, and
older Unix systems export EUC-JP. Both are refused as "not UTF-8"; naming the encoding turns that
into a fix the user can make (re-export, or ``--encoding``).
"""

from __future__ import annotations

import codecs

from registry.errors import ConfigError

# (Python codec, name a user knows it by, how to convert the file to UTF-8)
LEGACY_JAPANESE = (
    ("cp932", 'Shift_JIS/CP932 (what Japanese Excel saves as "CSV")', 'save it again as "CSV UTF-8"'),
    ("euc_jp", "EUC-JP", "convert it (iconv -f EUC-JP -t UTF-8)"),
)
# A legacy decode counts as a match only when nearly all its non-ASCII characters are ordinary
# Japanese: EUC-JP bytes also decode as CP932, but into half-width katakana and stray symbols.
MIN_PLAUSIBLE_SHARE = 0.9


def guess_japanese(raw: bytes) -> tuple[str, str, str] | None:
    """The `LEGACY_JAPANESE` entry ``raw`` decodes cleanly and plausibly in, or None."""
    best, best_share = None, MIN_PLAUSIBLE_SHARE
    for entry in LEGACY_JAPANESE:
        try:
            text = raw.decode(entry[0])
        except UnicodeDecodeError:
            continue
        foreign = [ch for ch in text if not ch.isascii()]
        share = sum(map(_ordinary_japanese, foreign)) / len(foreign) if foreign else 0.0
        if share >= best_share:
            best, best_share = entry, share
    return best


def _ordinary_japanese(ch: str) -> bool:
    return (
        "\u3000" <= ch <= "\u30ff"  # punctuation, hiragana, katakana
        or "\u4e00" <= ch <= "\u9fff"  # unified ideographs
        or "\uff01" <= ch <= "\uff5e"
    )  # full-width ASCII


def codec_name(encoding: str) -> str:
    """Python's canonical name for a text encoding (``Shift-JIS`` → ``shift_jis``).

    Raises:
        ConfigError: no such text encoding.
    """
    try:
        info = codecs.lookup(encoding)
        "".encode(info.name)  # LookupError for codecs that are not text encodings (base64, rot13)
    except (LookupError, TypeError):
        raise ConfigError(
            f"--encoding {encoding!r} is not a text encoding Python knows; "
            "for Japanese files use cp932 (Shift_JIS) or euc_jp"
        ) from None
    if info.name.startswith(("utf-16", "utf-32")):
        # Their NUL bytes would be refused as binary after decoding was allowed: say so up front.
        raise ConfigError(f"--encoding {encoding!r}: UTF-16 and UTF-32 files are not read; re-export the file as UTF-8")
    return info.name
