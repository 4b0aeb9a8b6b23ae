"""The label-noise audit on synthetic, well-separated embeddings (no model): flipped labels are found,
the noise rate tracks the flips, and tiny batches get a note instead of a crash."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from pipelines.batches.noise_audit import REVIEW_COLUMNS, audit_embeddings, write_review


def _clusters(per_class: int, classes: int = 4, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = np.eye(classes, 16) * 3.0
    x = np.concatenate([centres[c] + rng.normal(0, 0.3, (per_class, 16)) for c in range(classes)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, [f"class{c}" for c in range(classes) for _ in range(per_class)]


def _audit(x, labels, **kwargs):
    ids = [f"r{i}" for i in range(len(labels))]
    texts = [f"text {i}" for i in range(len(labels))]
    return audit_embeddings(x, labels, ids, texts, max_rate=0.3, **kwargs)


def test_flipped_labels_are_flagged_and_the_rate_tracks_them():
    x, labels = _clusters(per_class=20)
    flipped = {3, 25, 47, 70}
    for i in flipped:
        labels[i] = "class0" if labels[i] != "class0" else "class1"
    audit, suspects = _audit(x, labels)
    assert {s.id for s in suspects} == {f"r{i}" for i in flipped}
    assert audit.estimated_rate == pytest.approx(len(flipped) / 80, abs=0.03)
    assert audit.flagged == 4 and audit.audited_rows == 80 and audit.folds == 5
    r3 = next(s for s in suspects if s.id == "r3")
    assert (r3.given_label, r3.suggested_label) == ("class1", "class0")
    assert r3.confidence > 0.5 > r3.given_label_probability


def test_a_clean_batch_has_a_low_rate_and_no_suspects():
    x, labels = _clusters(per_class=10)
    audit, suspects = _audit(x, labels)
    assert suspects == []
    assert audit.estimated_rate < 0.05
    assert audit.notes == []


def test_classes_smaller_than_the_folds_lower_the_folds_with_a_note():
    x, labels = _clusters(per_class=3)
    audit, _ = _audit(x, labels)
    assert audit.folds == 3
    assert audit.estimated_rate is not None
    assert "used 3 folds instead of 5" in audit.notes[0]


def test_a_single_example_class_is_left_out_with_a_note():
    x, labels = _clusters(per_class=6)
    labels[0] = "lonely"
    audit, _ = _audit(x, labels)
    assert audit.audited_rows == 23
    assert "1 class(es) with a single example (lonely)" in audit.notes[0]


def test_one_class_only_skips_the_audit_with_a_note():
    x, _ = _clusters(per_class=5)
    audit, suspects = _audit(x, ["only"] * len(x))
    assert audit.estimated_rate is None and suspects == []
    assert "noise audit skipped: fewer than two classes" in audit.notes[-1]


def test_the_review_file_has_one_row_per_suspect(tmp_path):
    x, labels = _clusters(per_class=20)
    labels[3] = "class2"
    _, suspects = _audit(x, labels)
    path = write_review(suspects, tmp_path / "review" / "noise_review.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfid,")  # the BOM Japanese Excel needs to read UTF-8
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == REVIEW_COLUMNS
    assert [(r["id"], r["given_label"], r["suggested_label"]) for r in rows] == [("r3", "class2", "class0")]


def test_a_batch_above_the_row_cap_is_audited_on_a_stratified_seeded_sample_with_a_note(monkeypatch):
    import serving.embeddings
    from pipelines.batches.noise_audit import audit_label_noise

    x, labels = _clusters(per_class=300)
    labels[-3:] = ["rare"] * 3  # a class far below its share still keeps two rows to cross-validate
    vectors = {f"text {i}": x[i] for i in range(len(labels))}
    embedded: list[int] = []

    def embed(texts, model_dir):
        embedded.append(len(texts))
        return np.stack([vectors[t] for t in texts])

    monkeypatch.setattr(serving.embeddings, "embed", embed)
    texts, ids = [f"text {i}" for i in range(len(labels))], [f"r{i}" for i in range(len(labels))]

    audit, _ = audit_label_noise(texts, labels, ids, model_dir=None, max_rate=0.3, max_rows=200)
    again, _ = audit_label_noise(texts, labels, ids, model_dir=None, max_rate=0.3, max_rows=200)

    assert embedded[0] == audit.audited_rows and 195 <= audit.audited_rows <= 205  # not the 1,200 rows
    assert audit.notes[0].startswith(f"audited a seeded sample of {audit.audited_rows} of 1,200 labeled rows")
    assert "rare" not in " ".join(audit.notes[1:])  # not left out as a single-example class
    assert again == audit  # the same sample every time


def test_the_cross_validation_fits_on_one_blas_thread_and_gives_the_pool_back(monkeypatch):
    # OpenBLAS's second thread made the audit's fits twenty times slower on a busy two-core host.
    from threadpoolctl import threadpool_info, threadpool_limits

    from pipelines.batches import noise_audit

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    seen: list[set[int]] = []
    real = noise_audit.class_mean_proba

    def spying(*args, **kwargs):
        seen.append(blas_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(noise_audit, "class_mean_proba", spying)
    x, labels = _clusters(10)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        _audit(x, labels)
        after = blas_threads()
    assert seen and all(threads == {1} for threads in seen)
    assert after == before
