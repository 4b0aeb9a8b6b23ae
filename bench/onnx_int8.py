"""Accuracy of the ONNX backends against PyTorch on a holdout: fp32 (should be the same) and int8 (measured).

    .venv/bin/python bench/onnx_int8.py [--steps 30] [--train data/sample/train.csv] [--holdout data/sample/holdout.csv]

Trains an adapter of the shipped shape on --train, then predicts --holdout with the unmerged PyTorch
classifier, the merged ONNX graph and its int8 quantisation. Prints a table and saves
bench/results/onnx_int8.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=arguments.at_least(1), default=30)
    parser.add_argument("--train", type=Path, default=REPO / "data" / "sample" / "train.csv")
    parser.add_argument("--holdout", type=Path, default=REPO / "data" / "sample" / "holdout.csv")
    args = parser.parse_args()

    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    from pipelines.batches.read import read_batch
    from pipelines.policy import DataPolicy
    from pipelines.settings import load_settings
    from pipelines.training.params import load_params
    from pipelines.training.recipe import train
    from serving.model import load_base, load_classifier
    from serving.onnx_backend import load_onnx_classifier

    settings = load_settings()
    holdout = read_batch(args.holdout, max_bytes=DataPolicy().max_file_bytes)
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        work = Path(tmp)
        base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=work)
        train(
            read_batch(args.train, max_bytes=DataPolicy().max_file_bytes),
            work / "adapter",
            base=base,
            params=load_params(min_steps=args.steps, max_steps=args.steps),
        )
        reference = load_classifier(work / "adapter", base)
        expected = reference.predict_proba(holdout.texts)
        results = {}
        for name, model in (
            ("torch unmerged", reference),
            ("onnx fp32", load_onnx_classifier(work / "adapter", base, work / "onnx")),
            ("onnx int8", load_onnx_classifier(work / "adapter", base, work / "onnx", int8=True)),
        ):
            proba = model.predict_proba(holdout.texts)
            pred = [model.labels[i] for i in proba.argmax(axis=1)]
            results[name] = {
                "accuracy": round(accuracy_score(holdout.labels, pred), 4),
                "macro_f1": round(f1_score(holdout.labels, pred, average="macro"), 4),
                "max_abs_prob_diff_vs_torch": float(np.abs(proba - expected).max()),
                "argmax_agreement_vs_torch": float((proba.argmax(axis=1) == expected.argmax(axis=1)).mean()),
                "graph_mb": round(model.graph.stat().st_size / 2**20, 1) if hasattr(model, "graph") else None,
            }
    out = REPO / "bench" / "results" / "onnx_int8.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"holdout": str(args.holdout), "rows": len(holdout), "steps": args.steps, "results": results}, indent=2
        )
    )
    print(
        "| backend | accuracy | macro-F1 | max |Δp| vs torch | argmax agreement | graph MB |\n|---|---|---|---|---|---|"
    )
    for name, r in results.items():
        print(
            f"| {name} | {r['accuracy']} | {r['macro_f1']} | {r['max_abs_prob_diff_vs_torch']:.2e} | "
            f"{r['argmax_agreement_vs_torch']:.3f} | {r['graph_mb']} |"
        )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
