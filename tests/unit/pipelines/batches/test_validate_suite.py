"""The shipped expectation suite and its inputs: every entry is known and says why; bad suite and
labels files are refused naming the problem."""

from __future__ import annotations

import pytest

from pipelines.batches.rules import CHECKS, normalise_text
from pipelines.batches.suite import load_suite
from pipelines.batches.validate import load_labels
from registry.errors import ConfigError, NotFoundError


def test_the_shipped_suite_loads_and_every_entry_says_why():
    suite = load_suite()
    assert all(len(entry.why.split()) >= 5 for entry in suite)
    assert {entry.check for entry in suite if entry.check} == set(CHECKS)
    assert {
        "ExpectColumnValuesToBeInSet",
        "ExpectCompoundColumnsToBeUnique",
        "ExpectColumnValuesToNotBeInSet",
        "ExpectColumnValueLengthsToBeBetween",
        "ExpectColumnValuesToNotBeNull",
    } <= {e.expectation for e in suite}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "suite:\n  - {name: x, why: because, expectation: ExpectNothingAtAll}\n",
            "unknown GE expectation ExpectNothingAtAll",
        ),
        ("suite:\n  - {name: x, why: because, check: guess}\n", "unknown check guess"),
        ("suite:\n  - {name: x, why: '', check: class_imbalance}\n", "entry 1 (x) has no why"),
        ("suite:\n  - {name: x, why: w, check: class_imbalance, expectation: ExpectColumnToExist}\n", "give one of"),
        ("suite:\n  - {name: x, why: w, colour: red}\n", "entry 1"),
        (
            "suite:\n  - {name: x, why: w, check: class_imbalance}\n  - {name: x, why: w, check: mixed_label_types}\n",
            "name 'x' is used twice",
        ),
        ("suite: []\n", "non-empty `suite:` list"),
        ("suite: [unclosed\n", "not valid YAML"),
        ("suite: [caf\xe9]\n", "not valid YAML: 'utf-8' codec can't decode byte 0xe9"),
    ],
)
def test_a_broken_suite_is_refused_naming_the_entry(tmp_path, text, message):
    path = tmp_path / "suite.yaml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_suite(path)


def test_labels_files_skip_blanks_and_comments_and_refuse_repeats(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\ufeff# allowed\ncard_lost\n\n refund \n")
    assert load_labels(path) == ["card_lost", "refund"]
    path.write_text("a\nb\na\n")
    with pytest.raises(ConfigError, match="repeats a"):
        load_labels(path)
    with pytest.raises(NotFoundError, match="does not exist"):
        load_labels(tmp_path / "missing.txt")
    path.write_bytes("card_lost\nremboursé\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"is not UTF-8 text \(byte 0xe9 at offset 18\)"):
        load_labels(path)


def test_normalised_text_ignores_case_accents_punctuation_and_spacing():
    assert normalise_text("  Café — CLOSED!!  today ") == normalise_text("cafe closed today") == "cafe closed today"
    assert normalise_text("there’s") == normalise_text("there's")


def test_normalising_japanese_keeps_voicing_marks_and_folds_width():
    assert normalise_text("ガス代") == "ガス代" != normalise_text("カス代")
    assert normalise_text("バグ") != normalise_text("ハク")
    assert normalise_text("ﾊﾟｽﾜｰﾄﾞを忘れました。") == normalise_text("パスワードを忘れました") == "パスワードを忘れました"
    assert normalise_text("ＩＤが　使えない！") == normalise_text("idが 使えない")
    assert normalise_text("हिन्दी") == "हिन्दी"  # vowel signs are marks of their letters, never dropped
