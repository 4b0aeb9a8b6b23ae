"""quality_metrics: the numbers every quality check and report is built on."""

from __future__ import annotations

import pytest

from pipelines.metrics import quality_metrics


def test_perfect_predictions_score_one_everywhere():
    m = quality_metrics(["a", "b", "b"], ["a", "b", "b"], ["a", "b"])
    assert m.accuracy == 1.0 and m.macro_f1 == 1.0
    assert [c.support for c in m.per_class] == [1, 2]
    assert m.confusion == [[1, 0], [0, 2]]


def test_macro_f1_matches_scikit_learn_on_a_mixed_case():
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    y_true = ["a", "a", "b", "b", "c", "c", "c", "a"]
    y_pred = ["a", "b", "b", "c", "c", "c", "a", "a"]
    m = quality_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=["a", "b", "c"])
    assert [c.precision for c in m.per_class] == pytest.approx(list(p))
    assert [c.recall for c in m.per_class] == pytest.approx(list(r))
    assert [c.f1 for c in m.per_class] == pytest.approx(list(f))
    assert m.confusion[2] == [1, 0, 2]  # true c: once predicted a, twice c


def test_a_label_the_model_does_not_know_counts_as_an_error_not_as_missing():
    m = quality_metrics(["a", "new"], ["a", "a"], ["a", "b"])
    assert m.labels == ["a", "b", "new"]
    assert m.accuracy == 0.5
    # "b" never occurs (true or predicted): left out of the average; "new" scores 0 and stays in.
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.0) / 2)


def test_lengths_that_differ_are_refused():
    with pytest.raises(ValueError, match="y_true has 2 labels but y_pred has 1"):
        quality_metrics(["a", "b"], ["a"], ["a", "b"])
