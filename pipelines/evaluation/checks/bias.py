"""Bias check: macro-F1 per group (the holdout's ``group`` column) and the largest gap between groups.

Groups smaller than ``bias.min_group_size`` are reported but not judged: on five rows one mistake moves
macro-F1 by 0.2 or more, so judging them would fail candidates on noise.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.evaluation.checks.report import finish
from pipelines.metrics import quality_metrics
from pipelines.policy import BiasPolicy
from pipelines.records import CheckResult, LabeledBatch, Threshold, listed

NAME = "bias"


def run(
    holdout: LabeledBatch,
    candidate_pred: list[str],
    labels: list[str],
    policy: BiasPolicy,
    *,
    out_dir: Path | None = None,
) -> CheckResult:
    """Per-group macro-F1 of ``candidate_pred`` on ``holdout``; judged on the gap between judged groups.

    Not judged (passes, with the reason in ``details``) when the holdout has no group column or fewer
    than two groups reach the minimum size.

    Raises:
        ValueError: ``candidate_pred`` does not match the holdout's length.
    """
    if len(candidate_pred) != len(holdout):
        raise ValueError(f"candidate predicted {len(candidate_pred)} rows, the holdout has {len(holdout)}")
    groups: dict[str, dict] = {}
    rows_of: dict[str, list[int]] = {}
    for i, group in enumerate(holdout.groups or []):
        # A row without a group value belongs to no group; '' judged as a group would be a fiction.
        if group.strip():
            rows_of.setdefault(group, []).append(i)
    for group, rows in sorted(rows_of.items()):
        m = quality_metrics([holdout.labels[i] for i in rows], [candidate_pred[i] for i in rows], labels)
        groups[group] = {
            "rows": len(rows),
            "macro_f1": m.macro_f1,
            "accuracy": m.accuracy,
            "judged": len(rows) >= policy.min_group_size,
        }
    ungrouped = len(holdout) - sum(len(rows) for rows in rows_of.values()) if holdout.groups is not None else 0
    judged = {g: v["macro_f1"] for g, v in groups.items() if v["judged"]}
    details: dict = {"groups": groups, "min_group_size": policy.min_group_size}
    thresholds = []
    if holdout.groups is None:
        details["summary"] = "the holdout has no group column: not judged"
    elif len(judged) < 2:
        details["summary"] = (
            f"{len(judged)} group(s) with at least {policy.min_group_size} rows: fewer than two to compare, not judged"
        )
    else:
        ranked = sorted(judged, key=lambda g: (judged[g], g))
        worst, best = ranked[0], ranked[-1]
        gap = judged[best] - judged[worst]
        thresholds.append(Threshold.judge("macro_f1_gap", "bias.max_gap", gap, "<=", policy.max_gap))
        details.update(worst_group=worst, best_group=best, gap=gap)
        details["summary"] = (
            f"worst group '{worst}' macro-F1 {judged[worst]:.3f} vs best '{best}' {judged[best]:.3f} (gap {gap:.3f})"
        )
    small = sorted(g for g, v in groups.items() if not v["judged"])
    if small:
        # details["groups"] has every one; a summary line must stay readable with 10,000 of them
        in_all = f" ({len(small)} in all)" if len(small) > 10 else ""
        details["summary"] += f"; reported only (under {policy.min_group_size} rows): {listed(small)}{in_all}"
    details["rows_without_group"] = ungrouped
    if ungrouped:
        details["summary"] += f"; {ungrouped} row{'s' if ungrouped != 1 else ''} without a group value, in none"
    return finish(NAME, thresholds, details, out_dir=out_dir)
