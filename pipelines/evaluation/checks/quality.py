"""Quality check: the candidate's scores on the holdout and, when production exists, the paired
difference against production on the very same rows, with a bootstrap confidence interval.

The regression limit is judged on the interval's bound, not the point estimate: on a 40-row holdout a
candidate that is 3 points worse by chance often shows +1 point, and the gate must not pass it on that
noise. Pairing (both models resampled on the same rows) keeps the interval as narrow as the data allows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.batches.rules import normalise_text
from pipelines.evaluation.checks.report import finish
from pipelines.metrics import quality_metrics
from pipelines.policy import QualityPolicy
from pipelines.records import CheckResult, LabeledBatch, Threshold, listed

NAME = "quality"


def run(
    holdout: LabeledBatch,
    candidate_pred: list[str],
    labels: list[str],
    policy: QualityPolicy,
    *,
    trained_texts: list[str] | None = None,
    production_pred: list[str] | None = None,
    production: str | None = None,
    baseline_pred: dict[str, list[str]] | None = None,
    out_dir: Path | None = None,
    seed: int = 0,
) -> CheckResult:
    """Score ``candidate_pred`` on ``holdout`` and compare it with ``production_pred`` when given.

    Args:
        holdout: the labeled holdout.
        candidate_pred: the candidate's predicted label per holdout row.
        labels: the candidate's label set (class-index order).
        policy: the ``quality`` section.
        trained_texts: the texts the candidate was trained on (its ``reference.csv``); holdout rows
            among them are counted and judged against ``max_holdout_trained_share``.
        production_pred: production's predictions on the same rows, or None when nothing holds production.
        production: how production is named in the report (``name:version``).
        baseline_pred: each baseline's predictions on the same rows (``pipelines.evaluation.baselines``), fitted on
            the candidate's own training rows; the candidate fails when one beats it beyond the interval.
        out_dir: the adapter folder; ``reports/quality.json`` is written there when given.
        seed: bootstrap seed (the interval is reproducible).

    Raises:
        ValueError: a prediction list does not match the holdout's length.
    """
    metrics = quality_metrics(holdout.labels, candidate_pred, labels)
    normalised = [normalise_text(t) for t in holdout.texts]  # near-copies compare equal
    distinct = len(set(normalised))  # a row repeated 30 times is one example
    missing = sorted(set(labels) - set(holdout.labels))
    thresholds = [
        Threshold.judge("macro_f1", "quality.min_macro_f1", metrics.macro_f1, ">=", policy.min_macro_f1),
        Threshold.judge("holdout_size", "quality.min_holdout_size", float(distinct), ">=", policy.min_holdout_size),
        Threshold.judge(
            "label_coverage",
            "quality.min_label_coverage",
            1 - len(missing) / len(labels),
            ">=",
            policy.min_label_coverage,
        ),
    ]
    details: dict = {
        "accuracy": metrics.accuracy,
        "macro_f1": metrics.macro_f1,
        "examples": metrics.examples,
        "labels": metrics.labels,
        "per_class": [c.model_dump() for c in metrics.per_class],
        "confusion": metrics.confusion,
    }
    if production_pred is None:
        details["production"] = None
        details["summary"] = (
            f"macro-F1 {metrics.macro_f1:.3f} on {len(holdout)} rows; not compared with a "
            "production version: judged on the floor only"
        )
    else:
        if len(production_pred) != len(holdout):
            raise ValueError(f"production predicted {len(production_pred)} rows, the holdout has {len(holdout)}")
        comparison = paired_bootstrap(
            holdout.labels,
            candidate_pred,
            production_pred,
            samples=policy.bootstrap_samples,
            confidence=policy.confidence,
            seed=seed,
        )
        drop_upper = -comparison["diff_ci_low"]
        thresholds.append(
            Threshold.judge("macro_f1_drop_upper", "quality.max_regression", drop_upper, "<=", policy.max_regression)
        )
        details["production"] = {"ref": production, **comparison}
        details["summary"] = (
            f"macro-F1 {metrics.macro_f1:.3f} vs production {comparison['production_macro_f1']:.3f} on "
            f"{len(holdout)} rows; difference {comparison['diff']:+.3f}, {policy.confidence:.0%} CI "
            f"[{comparison['diff_ci_low']:+.3f}, {comparison['diff_ci_high']:+.3f}]"
        )
    details["baselines"] = {}
    for name, pred in (baseline_pred or {}).items():
        versus = paired_bootstrap(
            holdout.labels,
            candidate_pred,
            pred,
            samples=policy.bootstrap_samples,
            confidence=policy.confidence,
            seed=seed,
        )
        # Judged at the bound most favourable to the candidate (diff_ci_high), where the regression rule
        # takes the unfavourable one (diff_ci_low), deliberately: production earned its place and a
        # candidate must show it is not worse, while a baseline fails a candidate only when even that
        # bound says the baseline is better by more than the limit (a small holdout cannot fail it on noise).
        thresholds.append(
            Threshold.judge(
                f"macro_f1_loss_to_{name}_baseline_lower",
                "quality.max_loss_to_baseline",
                -versus["diff_ci_high"],
                "<=",
                policy.max_loss_to_baseline,
            )
        )
        details["baselines"][name] = {
            "macro_f1": versus["production_macro_f1"],
            "diff": versus["diff"],
            "diff_ci_low": versus["diff_ci_low"],
            "diff_ci_high": versus["diff_ci_high"],
            "confidence": versus["confidence"],
            # the interval of (candidate - baseline), the shape the issue names
            "interval": [versus["diff_ci_low"], versus["diff_ci_high"]],
        }
        if -versus["diff_ci_high"] > policy.max_loss_to_baseline:
            details["summary"] += (
                f"; the {name} baseline beats it: {versus['production_macro_f1']:.3f} against "
                f"{metrics.macro_f1:.3f}, {policy.confidence:.0%} CI of the difference "
                f"[{versus['diff_ci_low']:+.3f}, {versus['diff_ci_high']:+.3f}]"
            )
        else:
            details["summary"] += f"; {name} baseline {versus['production_macro_f1']:.3f}"
    details["distinct_texts"], details["labels_without_rows"] = distinct, missing
    if distinct < len(holdout):
        details["summary"] += f"; {distinct} distinct texts among them"
    if missing:
        details["summary"] += (
            f"; no row of {len(missing)} of the adapter's {len(labels)} labels "
            f"({listed([repr(m) for m in missing], 5)})"
        )
    # A holdout row whose label the candidate was never trained on can only be scored wrong; say so,
    # or a stale or mistyped holdout reads as a weak model.
    unknown = sorted(set(holdout.labels) - set(labels))
    details["unknown_labels"] = unknown
    if unknown:
        rows = sum(label in unknown for label in holdout.labels)
        details["summary"] += (
            f"; {rows} holdout row{'s' if rows != 1 else ''} labelled with "
            f"{', '.join(repr(u) for u in unknown)}, which the adapter was not trained on, "
            "scored as wrong"
        )
    if trained_texts is not None:
        trained = {normalise_text(t) for t in trained_texts}
        seen = [i for i, text in enumerate(normalised) if text in trained]
        thresholds.append(
            Threshold.judge(
                "holdout_trained_share",
                "quality.max_holdout_trained_share",
                len(seen) / len(holdout),
                "<=",
                policy.max_holdout_trained_share,
            )
        )
        details["holdout_rows_trained_on"] = [holdout.ids[i] for i in seen]
        if seen:
            details["summary"] += (
                f"; {len(seen)} holdout row{'s' if len(seen) != 1 else ''} (id "
                f"{holdout.named(seen, 5)}) the adapter was trained on"
            )
    return finish(NAME, thresholds, details, out_dir=out_dir)


def paired_bootstrap(
    y_true: list[str], cand: list[str], prod: list[str], *, samples: int, confidence: float, seed: int = 0
) -> dict[str, float]:
    """Macro-F1 of both models and the percentile interval of (candidate - production).

    Both models are scored on the same resampled rows each round, so row difficulty cancels out.
    """
    vocab = sorted(set(y_true) | set(cand) | set(prod))
    index = {label: i for i, label in enumerate(vocab)}
    t = np.array([index[v] for v in y_true])
    c = np.array([index[v] for v in cand])
    p = np.array([index[v] for v in prod])
    rng = np.random.default_rng(seed)
    # Row i drawn k times in a round = weight k: one matrix product scores every round at once.
    weights = rng.multinomial(len(t), np.full(len(t), 1.0 / len(t)), size=samples).astype(np.float64)
    diffs = _weighted_macro_f1(weights, t, c, len(vocab)) - _weighted_macro_f1(weights, t, p, len(vocab))
    ones = np.ones((1, len(t)))
    cand_f1 = float(_weighted_macro_f1(ones, t, c, len(vocab))[0])
    prod_f1 = float(_weighted_macro_f1(ones, t, p, len(vocab))[0])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    return {
        "candidate_macro_f1": cand_f1,
        "production_macro_f1": prod_f1,
        "diff": cand_f1 - prod_f1,
        "diff_ci_low": float(low),
        "diff_ci_high": float(high),
        "confidence": confidence,
        "bootstrap_samples": samples,
        "disagreements": int((c != p).sum()),
    }


def _weighted_macro_f1(weights: np.ndarray, t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    """Macro-F1 per row of ``weights`` (rounds × rows), averaged like ``quality_metrics`` does: over the
    labels that are true or predicted at least once in that round."""
    true_onehot = np.eye(k)[t]
    pred_onehot = np.eye(k)[p]
    tp = weights @ (true_onehot * pred_onehot)
    support = weights @ true_onehot
    predicted = weights @ pred_onehot
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    present = denom > 0
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
