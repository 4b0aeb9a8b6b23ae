"""The drift check on real text: the base model's embeddings, the tokenizer's vocabulary, Evidently."""

import json
from pathlib import Path

import pytest

from pipelines.batches.read import read_batch
from pipelines.evaluation.checks import drift
from pipelines.policy import DataPolicy, load_policy
from pipelines.records import LabeledBatch
from pipelines.settings import load_settings
from tests.conftest import REPO

BATCH_LIMIT = DataPolicy().max_file_bytes  # the shipped policy's data.max_file_mb

pytestmark = pytest.mark.integration


def rows(batch: LabeledBatch, keep) -> LabeledBatch:
    idx = [i for i in range(len(batch)) if keep(i)]
    return LabeledBatch(
        source=batch.source,
        texts=[batch.texts[i] for i in idx],
        labels=[batch.labels[i] for i in idx],
        ids=[batch.ids[i] for i in idx],
    )


@pytest.fixture(scope="module")
def halves() -> tuple[LabeledBatch, LabeledBatch]:
    """The sample training batch split in two halves with the same label mix."""
    train = read_batch(REPO / "data" / "sample" / "train.csv", max_bytes=BATCH_LIMIT)
    seen: dict[str, int] = {}
    side = []
    for label in train.labels:
        seen[label] = seen.get(label, 0) + 1
        side.append(seen[label] % 2)
    return rows(train, lambda i: side[i] == 0), rows(train, lambda i: side[i] == 1)


@pytest.fixture(scope="module")
def other_domain(banking77: Path) -> LabeledBatch:
    """Online-banking queries (Banking77), read in place: another domain, other labels."""
    from bench.banking77 import read

    picked = read("train", banking77).sample(60, random_state=0)
    return LabeledBatch(
        source="banking77",
        texts=picked.text.tolist(),
        labels=picked.category.tolist(),
        ids=[str(i) for i in range(len(picked))],
    )


@pytest.fixture(scope="module")
def base_model_dir() -> Path:
    return load_settings().base_model_dir


def test_a_batch_from_another_domain_is_flagged_as_drift_with_evidence(halves, other_domain, base_model_dir, tmp_path):
    reference, _ = halves
    result = drift.run(
        other_domain, reference, base_model_dir, load_policy().drift, reference_name="tickets:v1", out_dir=tmp_path
    )
    assert result.passed is False, result.details["summary"]
    assert result.value > 0.5
    assert {"label", "emb_centroid_sim"} <= set(result.details["drifted_columns"])
    assert result.evidence == ["reports/drift.json", "reports/drift.html", "reports/drift_evidently.json"]
    assert (
        (tmp_path / "reports" / "drift.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")
    )
    evidently = json.loads((tmp_path / "reports" / "drift_evidently.json").read_text(encoding="utf-8"))
    assert any(m["config"]["type"].endswith("DriftedColumnsCount") for m in evidently["metrics"])


def test_a_batch_from_the_same_distribution_is_not_flagged(halves, base_model_dir):
    reference, current = halves
    result = drift.run(current, reference, base_model_dir, load_policy().drift)
    assert result.passed is True, result.details["summary"]
    assert result.value <= 0.5
    assert "label" not in result.details["drifted_columns"]


def test_a_retrain_on_the_very_same_rows_shows_no_drift_at_all(halves, base_model_dir):
    reference, _ = halves
    result = drift.run(reference, reference, base_model_dir, load_policy().drift)
    assert result.passed is True
    assert result.details["drifted_columns"] == []
