"""The shipped English base model (all-MiniLM-L6-v2) on real batches: its drift columns and what validation
decides of an English and a Japanese batch. Seconds of model work each, so not unit tests (the measures
themselves: tests/unit/pipelines/batches/test_tokenizer_coverage.py)."""

from __future__ import annotations

import shutil

import pytest

from pipelines.settings import load_settings
from tests.conftest import REPO

DATA = REPO / "data"


@pytest.mark.parametrize("sample", ["sample", "sample_ja"])
def test_the_drift_columns_of_the_tokenizer_carry_signal_in_english_and_japanese(sample):
    """English has no unknown token under an English base: characters per token is what moves there."""
    from pipelines.batches.read import read_batch
    from pipelines.evaluation.checks.drift import features
    from pipelines.policy import DataPolicy

    batch = read_batch(DATA / sample / "train.csv", max_bytes=DataPolicy().max_file_bytes)
    frame, _ = features(batch, batch, load_settings().base_model_dir)
    assert frame["chars_per_token"].nunique() > 1 and frame["chars_per_token"].min() > 0
    # Under an English base, Japanese moves the unknown share; English leaves it at 0.
    assert (frame["unknown_token_share"].nunique() > 1) == (sample == "sample_ja")


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
