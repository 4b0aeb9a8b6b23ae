"""Classification quality: accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix.

Plain numpy (no scikit-learn import) so that evaluation, the checks and serving stay light.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict


class ClassQuality(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    precision: float
    recall: float
    f1: float
    support: int


class QualityMetrics(BaseModel):
    """Quality of predictions against true labels. ``confusion[i][j]``: true ``labels[i]`` predicted ``labels[j]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    examples: int
    accuracy: float
    macro_f1: float
    labels: list[str]
    per_class: list[ClassQuality]
    confusion: list[list[int]]


def quality_metrics(y_true: list[str], y_pred: list[str], labels: list[str]) -> QualityMetrics:
    """Score predictions. Macro-F1 averages over every label that is true or predicted at least once.

    Labels in ``y_true``/``y_pred`` that ``labels`` lacks are appended (sorted) so that an unseen
    class counts as an error instead of vanishing. A class with no true and no predicted example
    is left out of the macro average (it says nothing about the model), as scikit-learn does when
    given only the labels present.

    Raises:
        ValueError: ``y_true`` and ``y_pred`` differ in length.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}")
    extra = sorted((set(y_true) | set(y_pred)) - set(labels))
    all_labels = list(labels) + extra
    index = {label: i for i, label in enumerate(all_labels)}
    confusion = np.zeros((len(all_labels), len(all_labels)), dtype=np.int64)
    if y_true:
        np.add.at(confusion, ([index[t] for t in y_true], [index[p] for p in y_pred]), 1)
    tp = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    support = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = (support + predicted) > 0
    return QualityMetrics(
        examples=len(y_true),
        accuracy=float(tp.sum() / len(y_true)) if y_true else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        labels=all_labels,
        per_class=[
            ClassQuality(
                label=label,
                precision=float(precision[i]),
                recall=float(recall[i]),
                f1=float(f1[i]),
                support=int(support[i]),
            )
            for i, label in enumerate(all_labels)
        ],
        confusion=confusion.tolist(),
    )
