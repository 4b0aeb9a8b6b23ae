"""Evaluation prepared while the candidate trains: the holdout lands in the embedding memo at the
candidate's max_length, the baselines fitted on the batch are reused only for a reference holding exactly
its rows; a preparation that cannot run says so in the log and raises nothing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from pipelines.batches.read import read_batch
from pipelines.evaluation import baselines, preparation
from pipelines.evaluation.baselines import BaselineMemo, predict_baselines
from pipelines.evaluation.preparation import free_cores, prepare_evaluation
from pipelines.policy import load_policy
from pipelines.settings import Settings
from pipelines.training.params import load_params
from serving import embeddings
from serving.embeddings import EmbeddingMemo, frozen_embeddings
from serving.model import load_base
from tests.tiny_encoders import build

HOLDOUT = "id,text,label\nh1,雨が降る,weather\nh2,今日は寒い,weather\nh3,会議は三時,work\n"
BATCH = "text,label\n晴れて暑い,weather\n雪が積もった,weather\n風が強い,weather\n資料を送る,work\n打ち合わせ,work\n締め切りは明日,work\n"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build("bert", tmp_path_factory.mktemp("base") / "bert")


@pytest.fixture
def memo(monkeypatch) -> EmbeddingMemo:
    fresh = EmbeddingMemo()
    monkeypatch.setattr(embeddings, "MEMO", fresh)
    return fresh


@pytest.fixture
def prepared(monkeypatch) -> BaselineMemo:
    fresh = BaselineMemo()
    monkeypatch.setattr(baselines, "PREPARED", fresh)
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


def test_the_baselines_fitted_on_the_batch_are_reused_only_for_a_reference_of_exactly_its_rows(
    tiny_folder, tmp_path, memo, prepared, monkeypatch
):
    (tmp_path / "holdout.csv").write_text(HOLDOUT, encoding="utf-8")
    (tmp_path / "batch.csv").write_text(BATCH, encoding="cp932")
    prepare_evaluation(
        tmp_path / "holdout.csv", settings_for(tiny_folder, tmp_path), load_policy(), tmp_path / "batch.csv", "cp932"
    )
    assert len(prepared) == 1
    params, base = load_params(), load_base(tiny_folder, model_id="tiny", cache_dir=tmp_path)
    holdout = read_batch(tmp_path / "holdout.csv", max_bytes=10**6).texts
    (tmp_path / "reference.csv").write_text(BATCH, encoding="utf-8")  # as training writes it: UTF-8, the same rows
    reference = read_batch(tmp_path / "reference.csv", max_bytes=10**6)
    fitted = baselines._fit_predict_baselines(reference, holdout, base, params.max_length, params.head_C)
    fits = []
    monkeypatch.setattr(baselines, "_fit_predict_baselines", lambda *args: fits.append(args) or fitted)
    assert predict_baselines(reference, holdout, base, params.max_length, params.head_C) == fitted
    assert fits == []  # prepared
    relabelled = reference.model_copy(update={"labels": ["work", *reference.labels[1:]]})
    for changed in [
        (relabelled, holdout, params.max_length, params.head_C),
        (reference, holdout[:2], params.max_length, params.head_C),
        (reference, holdout, params.max_length, params.head_C * 2),
        (reference, holdout, params.max_length // 2, params.head_C),
    ]:
        predict_baselines(changed[0], changed[1], base, changed[2], changed[3])
    assert len(fits) == 4  # a reference, texts or setting the preparation did not fit on is fitted again


def test_a_batch_that_does_not_read_leaves_no_baselines_and_raises_nothing(
    tiny_folder, tmp_path, memo, prepared, caplog
):
    (tmp_path / "holdout.csv").write_text(HOLDOUT, encoding="utf-8")
    (tmp_path / "batch.csv").write_bytes("text,label\n晴れ,weather\n".encode("cp932"))
    with caplog.at_level(logging.INFO, logger="pipelines.evaluation.preparation"):
        prepare_evaluation(
            tmp_path / "holdout.csv", settings_for(tiny_folder, tmp_path), load_policy(), tmp_path / "batch.csv", None
        )
    assert "evaluation not prepared during training (evaluate does it)" in caplog.text
    assert len(prepared) == 0 and len(memo) == 3  # the holdout was embedded before the batch failed to read
