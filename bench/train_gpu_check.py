"""GPU check for `tailor train --device cuda` (run on a machine with CUDA; not a test).

Trains the default adapter on a Banking77 slice on CUDA, loads it back on CPU and on CUDA, and
checks that both give the same predictions (probabilities within 1e-3). Prints one JSON line and
exits 1 when they disagree.

    .venv/bin/python bench/train_gpu_check.py [--per-class 8] [--classes 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.banking77 import FOLDER, read  # noqa: E402
from pipelines.metrics import quality_metrics  # noqa: E402
from pipelines.records import LabeledBatch  # noqa: E402
from pipelines.settings import load_settings  # noqa: E402
from pipelines.training.params import TrainParams  # noqa: E402
from pipelines.training.recipe import train  # noqa: E402
from serving.model import load_base, load_classifier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=8)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--data", type=Path, default=FOLDER)
    args = ap.parse_args()
    df = read("train", args.data)
    keep = sorted(df.category.unique())[: args.classes]
    df = df[df.category.isin(keep)].groupby("category").sample(args.per_class, random_state=0)
    test = read("test", args.data)
    test = test[test.category.isin(keep)]
    test_texts, test_labels = test.text.tolist(), test.category.tolist()
    settings = load_settings()
    batch = LabeledBatch(
        source="banking77", texts=df.text.tolist(), labels=df.category.tolist(), ids=[str(i) for i in range(len(df))]
    )
    with tempfile.TemporaryDirectory() as tmp:
        gpu_base = load_base(
            settings.base_model_dir, device="cuda", model_id=settings.base_model_id, cache_dir=settings.home
        )
        result = train(batch, Path(tmp) / "adapter", base=gpu_base, params=TrainParams(), seed=0)
        cpu_base = load_base(
            settings.base_model_dir, device="cpu", model_id=settings.base_model_id, cache_dir=settings.home
        )
        on_cpu_clf = load_classifier(Path(tmp) / "adapter", cpu_base)
        on_cpu = on_cpu_clf.predict_proba(test_texts)
        on_gpu = load_classifier(Path(tmp) / "adapter", gpu_base).predict_proba(test_texts)
    pred = [on_cpu_clf.labels[i] for i in on_cpu.argmax(1)]
    same = bool((on_cpu.argmax(1) == on_gpu.argmax(1)).all() and np.abs(on_cpu - on_gpu).max() < 1e-3)
    print(
        json.dumps(
            {
                "same_predictions": same,
                "max_abs_prob_diff": float(np.abs(on_cpu - on_gpu).max()),
                "test_rows": len(test_texts),
                "macro_f1_on_cpu": quality_metrics(test_labels, pred, on_cpu_clf.labels).macro_f1,
                "train_examples": result.train_examples,
                "steps": result.params["steps"],
                "device": result.device,
                "cost": result.cost.model_dump(),
            }
        )
    )
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
