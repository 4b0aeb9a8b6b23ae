"""How many integration steps evaluation's holdout explanations need: each step count against a reference of many.

    .venv/bin/tailor train --data data/sample/train.csv --out /tmp/adapter
    .venv/bin/python bench/explain_steps.py --adapter /tmp/adapter --holdout data/sample/holdout.csv

Explains the holdout rows evaluation would pick (``pick_rows``: wrong ones first, then right ones; ``--rows``,
three times evaluation's 12 by default; rows longer than the model reads are left out, as their unread spans
would enter the comparison) at ``--reference`` steps once, and at each of ``--steps`` ``--repeats`` times in
rotated order, one torch thread, in one process. Per step count: the Spearman correlation of each row's span
attributions with the reference's (rows of more than two spans), how often the rationale (ERASER's top spans,
on which comprehensiveness is measured) and the top span are the reference's, the convergence error
|delta| / |p - p_baseline|, the largest change of comprehensiveness, and the median wall time as a ratio of the
default step count's. Prints a table and saves bench/results/explain_steps.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402


@dataclass(frozen=True)
class StepAgreement:
    """How far explanations at fewer steps are from the reference's, over the same rows."""

    rows_ranked: int  # rows of more than two spans, over which the Spearman correlations run
    spearman_median: float
    spearman_min: float
    same_rationale: float
    same_top_span: float
    error_median: float
    error_p90: float
    comprehensiveness_change_max: float


def top_spans(explanation, k: int) -> set[int]:
    spans = explanation.spans
    return set(sorted(range(len(spans)), key=lambda i: -spans[i].attribution)[:k])


def compare(found: list, reference: list) -> StepAgreement:
    """How far explanations ``found`` at fewer steps are from the ``reference`` ones of the same texts."""
    import numpy as np
    from scipy.stats import spearmanr

    rho, same_rationale, same_top, error, comprehensiveness = [], [], [], [], []
    for e, r in zip(found, reference):
        if len(e.spans) > 2:
            value = spearmanr([s.attribution for s in e.spans], [s.attribution for s in r.spans]).statistic
            if not np.isnan(value):  # constant attributions have no ranking
                rho.append(float(value))
        k = e.faithfulness.top_k
        same_rationale.append(top_spans(e, k) == top_spans(r, k))
        same_top.append(top_spans(e, 1) == top_spans(r, 1))
        error.append(abs(e.delta) / max(abs(e.probability - e.baseline_probability), 1e-9))
        comprehensiveness.append(abs(e.faithfulness.comprehensiveness - r.faithfulness.comprehensiveness))
    return StepAgreement(
        rows_ranked=len(rho),
        spearman_median=float(np.median(rho)) if rho else float("nan"),
        spearman_min=min(rho, default=float("nan")),
        same_rationale=float(np.mean(same_rationale)),
        same_top_span=float(np.mean(same_top)),
        error_median=float(np.median(error)),
        error_p90=float(np.percentile(error, 90)),
        comprehensiveness_change_max=max(comprehensiveness),
    )


def main() -> None:
    from serving.explain import DEFAULT_STEPS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", type=Path, required=True, help="an adapter folder (tailor train --out)")
    parser.add_argument("--holdout", type=Path, required=True, help="a labeled holdout CSV for that adapter")
    parser.add_argument("--rows", type=arguments.at_least(1), default=36, help="holdout rows explained")
    parser.add_argument("--steps", type=arguments.at_least(2), nargs="+", default=[8, 16, 24, DEFAULT_STEPS])
    parser.add_argument("--reference", type=arguments.at_least(2), default=128, help="steps of the reference")
    parser.add_argument("--repeats", type=arguments.at_least(1), default=3, help="timed runs of each step count")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "explain_steps.json")
    args = parser.parse_args()
    if DEFAULT_STEPS not in args.steps:
        parser.error(f"--steps must include the default, {DEFAULT_STEPS}: times are given as ratios to its time")

    import torch

    from pipelines.batches.read import read_batch
    from pipelines.evaluation.holdout_explanations import pick_rows
    from pipelines.settings import load_settings
    from serving.explain import explain_many
    from serving.model import load_base, load_classifier

    torch.set_num_threads(1)
    base_dir = load_settings().base_model_dir
    classifier = load_classifier(args.adapter, load_base(base_dir, model_id=base_dir.name, cache_dir=None))
    holdout = read_batch(args.holdout, max_bytes=1 << 30)
    predicted = classifier.predict(holdout.texts)
    rows = pick_rows([p == t for p, t in zip(predicted, holdout.labels)], args.rows)
    reference = explain_many(classifier, [holdout.texts[i] for i in rows], steps=args.reference)
    whole = [i for i, e in enumerate(reference) if not e.truncated]
    texts, reference = [holdout.texts[rows[i]] for i in whole], [reference[i] for i in whole]

    explained, seconds = {}, {steps: [] for steps in args.steps}
    for repeat in range(args.repeats):
        shift = repeat % len(args.steps)
        for steps in args.steps[shift:] + args.steps[:shift]:  # each step count early and late alike
            started = time.perf_counter()
            explained[steps] = explain_many(classifier, texts, steps=steps)
            seconds[steps].append(time.perf_counter() - started)
    default_s = statistics.median(seconds[DEFAULT_STEPS])
    results = [
        {
            "steps": steps,
            "wall_ratio": statistics.median(seconds[steps]) / default_s,
            **asdict(compare(explained[steps], reference)),
        }
        for steps in args.steps
    ]
    print(
        f"\n{len(texts)} rows of {args.holdout.name} ({len(rows) - len(texts)} left out as truncated), reference "
        f"{args.reference} steps, median of {args.repeats} timed runs\n"
        f"\n| steps | wall / {DEFAULT_STEPS} steps | Spearman vs reference (median / min) | same rationale | same top span "
        "| convergence error (median / p90) | largest comprehensiveness change |\n|---|---|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r['steps']} | {r['wall_ratio']:.2f} | {r['spearman_median']:.3f} / {r['spearman_min']:.3f} | "
            f"{r['same_rationale']:.0%} | {r['same_top_span']:.0%} | {r['error_median']:.3f} / {r['error_p90']:.3f} | "
            f"{r['comprehensiveness_change_max']:.3f} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg_1m": os.getloadavg()[0]},
                "adapter": str(args.adapter),
                "holdout": str(args.holdout),
                "rows": len(texts),
                "truncated_left_out": len(rows) - len(texts),
                "repeats": args.repeats,
                "reference_steps": args.reference,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
