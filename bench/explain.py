"""What an explanation costs on CPU next to one plain prediction of the same text, in the same process.

    .venv/bin/python bench/explain.py [--texts 8] [--steps 32] [--train-steps 30]

Trains an adapter of the shipped shape on data/sample/train.csv, then for the first --texts rows of
the English and of the Japanese sample holdouts times: one prediction (median of 5), an explanation
by integrated gradients at --steps (the default of `tailor explain`, /explain and evaluation), and one
by occlusion (what the ONNX backend gets); then all those texts' integrated gradients one at a time
against together (`explain_many`, as evaluation explains its holdout rows), with their largest
difference. Prints a table and saves bench/results/explain.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    from serving.explain import DEFAULT_STEPS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=arguments.at_least(1), default=8, help="texts per language")
    parser.add_argument("--steps", type=arguments.at_least(2), default=DEFAULT_STEPS)
    parser.add_argument("--train-steps", type=arguments.at_least(1), default=30)
    args = parser.parse_args()

    import torch

    from pipelines.batches.read import read_batch
    from pipelines.policy import DataPolicy
    from pipelines.settings import load_settings
    from pipelines.training.params import load_params
    from pipelines.training.recipe import train
    from serving.explain import explain, explain_many
    from serving.model import load_base, load_classifier

    settings = load_settings()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-explain-") as tmp:
        work = Path(tmp)
        base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=work)
        train(
            read_batch(REPO / "data" / "sample" / "train.csv", max_bytes=DataPolicy().max_file_bytes),
            work / "adapter",
            base=base,
            params=load_params(min_steps=args.train_steps, max_steps=args.train_steps),
        )
        classifier = load_classifier(work / "adapter", base)
        explain(classifier, "warm up", steps=2)
        for language, folder in (("English", "sample"), ("Japanese", "sample_ja")):
            texts = read_batch(REPO / "data" / folder / "holdout.csv", max_bytes=DataPolicy().max_file_bytes).texts[
                : args.texts
            ]
            predict = [
                statistics.median(_seconds(lambda: classifier.predict_proba([t])) for _ in range(5)) for t in texts
            ]
            found = []
            ig = [_seconds(lambda: found.append(explain(classifier, t, steps=args.steps))) for t in texts]
            occlusion = [_seconds(lambda: explain(classifier, t, method="occlusion")) for t in texts]
            together: list = []
            together_s = _seconds(lambda: together.extend(explain_many(classifier, texts, steps=args.steps)))
            rows[language] = {
                "texts": len(texts),
                "spans_mean": statistics.mean(len(e.spans) for e in found),
                "predict_s": statistics.median(predict),
                "integrated_gradients_s": statistics.median(ig),
                "occlusion_s": statistics.median(occlusion),
                "ig_vs_predict": statistics.median(i / p for i, p in zip(ig, predict)),
                "occlusion_vs_predict": statistics.median(o / p for o, p in zip(occlusion, predict)),
                "abs_delta_max": max(abs(e.delta) for e in found),
                "comprehensiveness_mean": statistics.mean(e.faithfulness.comprehensiveness for e in found),
                "random_comprehensiveness_mean": statistics.mean(
                    e.faithfulness.random_comprehensiveness for e in found
                ),
                "sufficiency_mean": statistics.mean(e.faithfulness.sufficiency for e in found),
                "ig_one_at_a_time_s": sum(ig),
                "ig_together_s": together_s,
                "together_attribution_diff_max": max(
                    abs(a.attribution - b.attribution)
                    for e, f in zip(found, together)
                    for a, b in zip(e.spans, f.spans)
                ),
            }
    out = REPO / "bench" / "results" / "explain.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "steps": args.steps,
                "train_steps": args.train_steps,
                "torch_threads": torch.get_num_threads(),
                "results": rows,
            },
            indent=2,
        )
    )
    print(
        f"| texts | spans (mean) | predict s | IG ({args.steps} steps) s | IG / predict | occlusion s | "
        "occlusion / predict | max abs delta | comprehensiveness (random) | sufficiency | all IG one at a time s | "
        "together s | max diff |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for language, r in rows.items():
        print(
            f"| {language} ×{r['texts']} | {r['spans_mean']:.1f} | {r['predict_s']:.3f} | {r['integrated_gradients_s']:.2f} | "
            f"{r['ig_vs_predict']:.0f}x | {r['occlusion_s']:.2f} | {r['occlusion_vs_predict']:.0f}x | "
            f"{r['abs_delta_max']:.1e} | {r['comprehensiveness_mean']:.3f} ({r['random_comprehensiveness_mean']:.3f}) | "
            f"{r['sufficiency_mean']:.3f} | {r['ig_one_at_a_time_s']:.2f} | {r['ig_together_s']:.2f} | "
            f"{r['together_attribution_diff_max']:.1e} |"
        )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
