"""The base tokenizer measured on a batch: unknown tokens and characters per token, for any script."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipelines.batches.tokenizer_coverage import DOCS_PAGE, measure, per_text, refusal
from pipelines.settings import load_settings
from serving.encoder import load_tokenizer
from tests.conftest import REPO

DATA = REPO / "data"


def _texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def english_tokenizer():
    return load_tokenizer(load_settings().base_model_dir)  # the shipped all-MiniLM-L6-v2


def test_the_english_base_reads_english_and_not_japanese(english_tokenizer):
    english = measure(_texts(DATA / "sample" / "train.csv"), english_tokenizer, "minilm")
    japanese = measure(_texts(DATA / "sample_ja" / "train.csv"), english_tokenizer, "minilm")
    assert english.unknown_token_share == 0.0 and english.chars_per_token > 3
    assert japanese.unknown_token_share > 0.15 and japanese.texts == 48
    assert set(japanese.unknown_characters) & set("".join(_texts(DATA / "sample_ja" / "train.csv")))
    assert refusal(english, 0.05, 0.6) is None
    message = refusal(japanese, 0.05, 0.6)
    assert message.startswith("the base model minilm cannot read this text: ")
    assert "over data.max_unknown_token_share 5%" in message and DOCS_PAGE in message and "--base-model" in message


def test_unknown_shares_are_per_text_and_in_tokens_not_whitespace_words(english_tokenizer):
    shares, chars = per_text(["my card is lost", "請求額が二重になっています", "", "?!"], english_tokenizer)
    assert shares[0] == 0.0 and 0.2 < shares[1] < 1.0 and shares[2] == 0.0 and shares[3] == 0.0
    assert chars[0] == 15 / 4 and chars[2] == 0.0


def test_text_cut_into_pieces_is_refused_on_characters_per_token(english_tokenizer):
    coverage = measure(["x" * 3], english_tokenizer, "m").model_copy(update={"chars_per_token": 0.4})
    assert "0.40 characters per token, under data.min_chars_per_token 0.6" in refusal(coverage, 0.05, 0.6)


def test_a_batch_without_text_is_not_refused_for_coverage(english_tokenizer):
    coverage = measure(["", "   "], english_tokenizer, "m")
    assert coverage.tokens == 0 and refusal(coverage, 0.05, 0.6) is None
