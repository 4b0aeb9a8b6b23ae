"""Explanations of a candidate's holdout predictions, written at evaluate time beside the gate's evidence.

The rows it got wrong come first (what an approver most needs to see), then a sample of rows it got
right, within a budget of rows and integration steps. The budget is a setting, not part of the
promotion policy: the policy's hash is recorded with every gate decision, and how much is explained
does not change what the gate decides.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.records import LabeledBatch
from pipelines.settings import Settings
from registry.explanations import EXPLANATIONS_FILE, ExplainedRow, ExplanationsReport
from serving.explain import DEFAULT_STEPS

log = logging.getLogger(__name__)
RIGHT_SHARE = 3  # one row in three is a right one (at least one), so a reviewer sees what the model gets right too


@dataclass(frozen=True)
class ExplainBudget:
    """How much evaluation explains: at most ``rows`` holdout rows, each with ``steps`` integration steps."""

    rows: int = 12
    steps: int = DEFAULT_STEPS

    def __post_init__(self) -> None:
        if self.rows < 0:
            raise ValueError(f"explain rows must be 0 or more, got {self.rows}")
        if self.steps < 2:
            raise ValueError(f"explain steps must be at least 2, got {self.steps}")

    @classmethod
    def of(cls, settings: "Settings") -> "ExplainBudget":
        """The budget ``settings`` set (``explain_rows``, ``explain_steps``), outside the promotion policy."""
        return cls(rows=settings.explain_rows, steps=settings.explain_steps)


def pick_rows(correct: list[bool], rows: int, *, seed: int = 0) -> list[int]:
    """Row indices to explain: wrong ones first (in holdout order), then a seeded sample of right ones.

    A third of the budget (at least one row when there are two or more) goes to right rows; slots one
    kind cannot fill go to the other.
    """
    wrong = [i for i, ok in enumerate(correct) if not ok]
    right = [i for i, ok in enumerate(correct) if ok]
    right_slots = max(1, rows // RIGHT_SHARE) if rows >= 2 else 0
    n_wrong = min(len(wrong), rows - min(right_slots, len(right)))
    n_right = min(len(right), rows - n_wrong)
    sample = np.random.default_rng(seed).permutation(len(right))[:n_right]
    return wrong[:n_wrong] + [right[i] for i in sorted(sample)]


def explain_holdout(
    classifier, holdout: LabeledBatch, predicted: list[str], budget: ExplainBudget, adapter: str
) -> ExplanationsReport:
    """Explain the picked holdout rows; an explanation that fails leaves the report's ``error`` saying why.

    Explaining never decides the gate, so a failure here is reported, not raised.
    """
    from serving.explain import explain_many

    correct = [p == t for p, t in zip(predicted, holdout.labels)]
    report = ExplanationsReport(
        adapter=adapter,
        max_rows=budget.rows,
        steps=budget.steps,
        wrong_total=correct.count(False),
        right_total=correct.count(True),
    )
    picked = pick_rows(correct, budget.rows)
    try:
        explanations = explain_many(classifier, [holdout.texts[i] for i in picked], steps=budget.steps)
    except Exception as err:  # noqa: BLE001 - explanations are evidence for people, never a reason to lose the gate's
        log.warning("explaining %s's holdout rows failed: %s", adapter, err)
        return report.model_copy(update={"error": f"{type(err).__name__}: {err}"})
    rows = [
        ExplainedRow(id=str(holdout.ids[i]), true_label=str(holdout.labels[i]), correct=correct[i], explanation=e)
        for i, e in zip(picked, explanations)
    ]
    return report.model_copy(update={"rows": rows})


def write_explanations(report: ExplanationsReport, out_dir: Path) -> Path:
    path = Path(out_dir) / EXPLANATIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=1), encoding="utf-8")
    return path
