"""Evaluation prepared while the candidate trains: the holdout lands in the embedding memo at the
candidate's max_length; a preparation that cannot run says so in the log and raises nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from pipelines.evaluation import preparation
from pipelines.evaluation.preparation import free_cores, prepare_evaluation
from pipelines.policy import load_policy
from pipelines.settings import Settings
from pipelines.training.params import load_params
from serving import embeddings
from serving.embeddings import EmbeddingMemo, frozen_embeddings
from serving.model import load_base
from tests.tiny_encoders import build

HOLDOUT = "id,text,label\nh1,雨が降る,weather\nh2,今日は寒い,weather\nh3,会議は三時,work\n"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build("bert", tmp_path_factory.mktemp("base") / "bert")


@pytest.fixture
def memo(monkeypatch) -> EmbeddingMemo:
    fresh = EmbeddingMemo()
    monkeypatch.setattr(embeddings, "MEMO", fresh)
    return fresh


def settings_for(base: Path, home: Path) -> Settings:
    return Settings(base_model=str(base), base_model_id="tiny", home=home)


def test_the_holdout_is_embedded_at_the_candidates_max_length_and_evaluate_then_embeds_nothing(
    tiny_folder, tmp_path, memo, monkeypatch
):
    # An optional extra that is not installed (captum without `.[explain]`) stops nothing.
    monkeypatch.setattr(preparation, "EVALUATION_MODULES", (*preparation.EVALUATION_MODULES, "tailor_not_installed"))
    holdout = tmp_path / "holdout.csv"
    holdout.write_text(HOLDOUT, encoding="utf-8")
    threads = torch.get_num_threads()
    prepare_evaluation(holdout, settings_for(tiny_folder, tmp_path), load_policy())
    assert len(memo) == 3
    assert torch.get_num_threads() == threads  # the thread count is put back
    base = load_base(tiny_folder, model_id="tiny", cache_dir=tmp_path)
    rows = []
    handle = base.encoder.register_forward_hook(lambda m, a, out: rows.append(out.last_hidden_state.shape[0]))
    try:
        frozen_embeddings(["雨が降る", "今日は寒い", "会議は三時"], base, load_params().max_length)
    finally:
        handle.remove()
    assert rows == []  # what the probe baseline asks for was all prepared


@pytest.mark.parametrize(
    "problem, arrange",
    [
        ("NotFoundError", lambda tmp, base: (tmp / "missing.csv", base)),
        ("NotFoundError", lambda tmp, base: (tmp / "holdout.csv", tmp / "no-base")),
    ],
    ids=["holdout missing", "base missing"],
)
def test_a_preparation_that_cannot_run_logs_why_and_raises_nothing(
    tiny_folder, tmp_path, memo, caplog, problem, arrange
):
    (tmp_path / "holdout.csv").write_text(HOLDOUT, encoding="utf-8")
    holdout, base = arrange(tmp_path, tiny_folder)
    with caplog.at_level(logging.INFO, logger="pipelines.evaluation.preparation"):
        prepare_evaluation(holdout, settings_for(base, tmp_path), load_policy())
    assert f"evaluation not prepared during training (evaluate does it): {problem}" in caplog.text
    assert len(memo) == 0


def test_the_cores_left_to_the_flow_are_those_training_does_not_take(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert free_cores(0) == 1  # training takes every core but one
    assert free_cores(3) == 5
    assert free_cores(16) == 1  # never none
