"""The base tokenizer measured on a batch: unknown tokens and characters per token, for any script."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from pipelines.batches.tokenizer_coverage import DOCS_PAGE, measure, per_text, refusal
from pipelines.settings import load_settings
from serving.encoder import load_tokenizer

DATA = Path(__file__).resolve().parents[2] / "data"


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


@pytest.mark.parametrize("sample", ["sample", "sample_ja"])
def test_the_drift_columns_of_the_tokenizer_carry_signal_in_english_and_japanese(english_tokenizer, sample):
    """English has no unknown token under an English base: characters per token is what moves there."""
    from pipelines.batches.read import read_batch
    from pipelines.evaluation.checks.drift import features
    from pipelines.policy import DataPolicy

    batch = read_batch(DATA / sample / "train.csv", max_bytes=DataPolicy().max_file_bytes)
    frame, _ = features(batch, batch, load_settings().base_model_dir)
    assert frame["chars_per_token"].nunique() > 1 and frame["chars_per_token"].min() > 0
    # Under an English base, Japanese moves the unknown share; English leaves it at 0.
    assert (frame["unknown_token_share"].nunique() > 1) == (sample == "sample_ja")


def test_text_cut_into_pieces_is_refused_on_characters_per_token(english_tokenizer):
    coverage = measure(["x" * 3], english_tokenizer, "m").model_copy(update={"chars_per_token": 0.4})
    assert "0.40 characters per token, under data.min_chars_per_token 0.6" in refusal(coverage, 0.05, 0.6)


def test_validation_refuses_a_japanese_batch_the_default_base_cannot_read_and_skips_its_noise_audit(tmp_path):
    from pipelines.batches.route import validate_and_route
    from pipelines.policy import load_policy

    base = load_settings().base_model_dir
    batch = tmp_path / "Downloads" / "train.csv"  # a copy: a regression that moved it must not touch the repo
    batch.parent.mkdir()
    shutil.copyfile(DATA / "sample_ja" / "train.csv", batch)
    report = validate_and_route(
        batch,
        load_policy(),
        data_dir=tmp_path / "data",
        labels_file=DATA / "sample_ja" / "labels.txt",
        base_model=base,
        track=False,
    )
    assert not report.accepted and [f.name for f in report.failures] == ["base model reads the text"]
    assert "cannot read this text" in report.failures[0].examples[0]
    assert report.coverage.unknown_token_share > 0.05 and report.noise is None
    assert "label-noise audit not run: the base model cannot read the batch" in report.notes
    assert batch.read_bytes() == (DATA / "sample_ja" / "train.csv").read_bytes()  # outside data/incoming: copied


def test_validation_of_english_with_the_default_base_passes_the_coverage_check(tmp_path):
    from pipelines.batches.validate import validate_batch
    from pipelines.policy import load_policy

    base = load_settings().base_model_dir
    report, _ = validate_batch(DATA / "sample" / "holdout.csv", load_policy(), base_model=base, noise_audit=False)
    assert report.accepted and "base model reads the text" in report.checked
    assert report.coverage.unknown_token_share == 0.0 and report.coverage.texts == 40


def test_a_batch_without_text_is_not_refused_for_coverage(english_tokenizer):
    coverage = measure(["", "   "], english_tokenizer, "m")
    assert coverage.tokens == 0 and refusal(coverage, 0.05, 0.6) is None
