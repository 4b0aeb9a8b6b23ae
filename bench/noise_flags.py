"""How many rows confident learning flags on clean and on flipped batches: the auto noise gate's false alarms
and its hits (pipelines/training/noise_gate.py, issue 25).

Not a test. Per task, size, flip rate and seed: the sample ``bench/train.py`` trains on, its labels flipped as
there (``bench.banking77.flip``), frozen embeddings at the train parameters' ``max_length``, and the rows
training's ``label_issues`` flags (out-of-sample probabilities, then cleanlab). Prints one line per
cell (flag counts per seed; how many seeds the 10 % share alone and the whole gate would act on) and saves
JSON to bench/results/noise_flags.json.

    PYTHONPATH=$PWD .venv/bin/python bench/noise_flags.py --tasks problem_vs_request arrival_vs_estimate topics5 \
        --per-class 8 16 --noise 0 0.2 0.4 --seeds 10
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402
from bench.banking77 import flip, sample  # noqa: E402
from bench.tasks import TASKS, load  # noqa: E402

RESULTS = REPO / "bench" / "results" / "noise_flags.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=["problem_vs_request"])
    ap.add_argument("--per-class", type=arguments.at_least(2), nargs="+", default=[8, 16])
    ap.add_argument("--noise", type=arguments.fraction, nargs="+", default=[0.0, 0.2, 0.4])
    ap.add_argument("--seeds", type=arguments.at_least(1), default=10)
    args = ap.parse_args()

    import torch

    from pipelines.settings import load_settings
    from pipelines.training.noise_gate import why_not_noisy
    from pipelines.training.objective import label_issues
    from pipelines.training.params import load_params
    from serving.embeddings import embed

    torch.set_num_threads(1)
    model_dir, params = load_settings().base_model_dir, load_params()
    cells = []
    for task in args.tasks:
        train_df, _ = load(task)
        for per_class in args.per_class:
            for rate in args.noise:
                flags, rows, refused = [], 0, []
                for seed in range(args.seeds):
                    df = sample(train_df, per_class, seed)
                    labels = flip(df.category.tolist(), rate, seed)[0]
                    names = sorted(set(labels))
                    y = np.array([names.index(label) for label in labels])
                    # flips left a class below min_per_class: training refuses such a batch
                    if np.bincount(y).min() < params.min_per_class:
                        refused.append(seed)
                        continue
                    embeddings = embed(df.text.tolist(), model_dir, max_length=params.max_length)
                    flags.append(int(label_issues(embeddings, y, len(names), params, seed)[1].sum()))
                    rows = len(y)
                cells.append(
                    {
                        "task": task,
                        "per_class": per_class,
                        "noise": rate,
                        "rows": rows,
                        "flags": flags,
                        "refused_seeds": refused,
                        "share_acts": sum(f / rows >= params.noise_auto_fraction for f in flags),
                        "gate_acts": sum(not why_not_noisy(f, rows, params) for f in flags),
                    }
                )
                print(json.dumps(cells[-1]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "cells": cells}, indent=2))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
