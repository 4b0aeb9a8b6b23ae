"""The suite's checks that Great Expectations has no expectation for, computed in pandas on the batch
frame (nulls excluded, like GE's column-map expectations), and how the batch frame is built."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable

from pipelines.policy import DataPolicy
from pipelines.records import LabeledBatch

# Labels that spreadsheet and pandas exports write for "no value".
NULL_LABELS = frozenset({"nan", "null", "none", "n/a"})


NUMERIC_LABEL = re.compile(r"^[+-]?\d+(\.\d+)?$")


MAX_EXAMPLES = 5


MAX_EXAMPLE_CHARS = 120


def normalise_text(text: str) -> str:
    """Width- and case-folded, Latin accents and punctuation removed, whitespace collapsed: near-copies compare equal.

    NFKC folds full-width Latin and half-width katakana to their usual forms. Only the accents of the
    Latin/Greek/Cyrillic block (U+0300–U+036F) are dropped: the kana voicing marks (ガ is カ + U+3099)
    and the vowel signs of Indic scripts are letters of their words, and dropping them made
    ガス and カス one word. A text with no letter or digit ("???", "👍") keeps its symbols, only
    case-folded with whitespace collapsed: stripped of them, every such text would compare equal.
    """
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold())
    kept = "".join(_kept_char(ch) for ch in decomposed)
    return unicodedata.normalize("NFC", " ".join(kept.split())) or " ".join(text.casefold().split())


def _kept_char(ch: str) -> str:
    if "\u0300" <= ch <= "\u036f":
        return ""
    # Marks (Mn/Mc) belong to their letter: the Devanagari vowel sign ि is "Mc", not alphanumeric.
    return ch if ch.isalnum() or unicodedata.category(ch).startswith("M") else " "


def batch_frame(batch: LabeledBatch):
    """The batch as the suite sees it: empty cells and null-like labels as nulls, plus text_normalised."""
    import pandas as pd

    texts = [t if t.strip() else None for t in batch.texts]
    labels = [None if (not x.strip() or x.strip().lower() in NULL_LABELS) else x for x in batch.labels]
    return pd.DataFrame(
        {
            "id": batch.ids,
            "text": texts,
            "label": labels,
            "group": batch.groups if batch.groups is not None else [None] * len(batch),
            "text_normalised": [normalise_text(t) if t is not None else None for t in texts],
        }
    )


Check = Callable[[Any, DataPolicy, "list[str] | None"], "tuple[int, list[str]] | None"]


def _conflicting_duplicates(frame, policy: DataPolicy, labels: list[str] | None):
    rows = frame.dropna(subset=["text", "label"])
    per_text = rows.groupby("text")["label"].nunique()
    conflicted = per_text[per_text > 1].index
    if len(conflicted) == 0:
        return None
    involved = rows[rows["text"].isin(conflicted)]
    examples = []
    for text, group in list(involved.groupby("text", sort=False))[:MAX_EXAMPLES]:
        parts = "; ".join(f"{label} (id {', '.join(g['id'].head(3))})" for label, g in group.groupby("label"))
        examples.append(example(parts, text))
    return len(involved), examples


def _mixed_label_types(frame, policy: DataPolicy, labels: list[str] | None):
    present = frame["label"].dropna()
    numeric = present[present.str.match(NUMERIC_LABEL)]
    words = present[~present.str.match(NUMERIC_LABEL)]
    if numeric.empty or words.empty:
        return None
    minority = numeric if len(numeric) <= len(words) else words
    return len(minority), [
        f"numeric labels: {', '.join(sorted(numeric.unique())[:MAX_EXAMPLES])}",
        f"word labels: {', '.join(sorted(words.unique())[:MAX_EXAMPLES])}",
    ]


def _label_spellings(frame, policy: DataPolicy, labels: list[str] | None):
    present = frame["label"].dropna()
    counts = present.value_counts()
    spellings: dict[str, list[str]] = {}
    for label in counts.index:
        spellings.setdefault(normalise_text(label), []).append(label)
    clashes = [group for group in spellings.values() if len(group) > 1]
    if not clashes:
        return None
    rows = sum(int(counts[label]) for group in clashes for label in group)
    return rows, [
        ", ".join(f"{label!r} ({counts[label]} rows)" for label in sorted(group)) for group in clashes[:MAX_EXAMPLES]
    ]


def _min_examples_per_class(frame, policy: DataPolicy, labels: list[str] | None):
    counts = frame["label"].value_counts()
    for label in labels or []:
        counts[label] = counts.get(label, 0)
    short = counts[counts < policy.min_examples_per_class].sort_values()
    if short.empty:
        return None
    return len(short), [
        f"{label}: {n} < {policy.min_examples_per_class}" for label, n in short.head(MAX_EXAMPLES).items()
    ]


def _class_imbalance(frame, policy: DataPolicy, labels: list[str] | None):
    counts = frame["label"].value_counts()
    if len(counts) < 2:
        return None
    ratio = counts.iloc[0] / counts.iloc[-1]
    if ratio <= policy.max_imbalance_ratio:
        return None
    return 1, [
        f"largest {counts.index[0]}: {counts.iloc[0]}, smallest {counts.index[-1]}: {counts.iloc[-1]}, "
        f"ratio {ratio:.1f} > {policy.max_imbalance_ratio}"
    ]


CHECKS: dict[str, Check] = {
    "conflicting_duplicates": _conflicting_duplicates,
    "mixed_label_types": _mixed_label_types,
    "label_spellings": _label_spellings,
    "min_examples_per_class": _min_examples_per_class,
    "class_imbalance": _class_imbalance,
}


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_EXAMPLE_CHARS else f"{text[:MAX_EXAMPLE_CHARS]}… ({len(text):,} chars)"


def example(prefix: str, text: str) -> str:
    return f"{prefix}: {short_repr(text)}"
