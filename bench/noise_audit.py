"""Benchmark the label-noise audit and the validation suite's speed.

1. Banking77 (real data, CC BY 4.0, read in place) at 16 examples per class with 0 %, 20 % and 40 %
   of labels flipped to another class (fixed seed): estimated vs true noise rate, and precision /
   recall of the flagged rows against the rows actually flipped.
2. Validation of a 1,000-row batch without the noise audit, after imports, against a baseline of
   reading the same batch (the same process).

Prints and saves ``bench/results/noise_audit.json``. Run from the repo root: ``.venv/bin/python -m bench.noise_audit``
(as a module, so that ``bench/registry.py`` does not shadow the ``registry`` package).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench import arguments
from bench.banking77 import flip, read, sample

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "noise_audit.json"


def noise_runs(per_class: int, shares: list[float], seed: int) -> list[dict]:
    from pipelines.batches.noise_audit import audit_embeddings
    from pipelines.settings import load_settings
    from serving.embeddings import embed

    frame = sample(read("train"), per_class, seed)
    texts = frame["text"].tolist()
    truth = frame["category"].tolist()
    ids = [str(i) for i in range(len(texts))]
    start = time.perf_counter()
    embeddings = embed(texts, load_settings().base_model_dir)
    embed_s = time.perf_counter() - start
    runs = []
    for share in shares:
        noisy, flipped = flip(truth, share, seed)
        start = time.perf_counter()
        audit, suspects = audit_embeddings(embeddings, noisy, ids, texts, max_rate=1.0, seed=seed)
        audit_s = time.perf_counter() - start
        flagged = {int(s.id) for s in suspects}
        hits = len(flagged & set(flipped))
        run = {
            "flipped_share": share,
            "rows": len(texts),
            "classes": len(set(truth)),
            "true_noise_rate": round(len(flipped) / len(texts), 4),
            "estimated_noise_rate": audit.estimated_rate,
            "flagged": len(flagged),
            "flagged_precision": round(hits / len(flagged), 4) if flagged else None,
            "flagged_recall": round(hits / len(flipped), 4) if flipped else None,
            "audit_seconds": round(audit_s, 2),
            "embed_seconds": round(embed_s, 2),
        }
        print(
            f"flipped {share:>4.0%}: true {run['true_noise_rate']:.3f}  estimated {audit.estimated_rate:.3f}  "
            f"flagged {len(flagged):4d}  precision {run['flagged_precision']}  recall {run['flagged_recall']}  "
            f"({audit_s:.1f} s audit, {embed_s:.1f} s embedding once)"
        )
        runs.append(run)
    return runs


def validation_speed(rows: int, repeats: int) -> dict:
    from pipelines.batches.read import read_batch
    from pipelines.batches.suite import run_suite
    from pipelines.policy import load_policy

    frame = sample(read("train"), 16, 0)
    frame = pd.concat([frame] * (rows // len(frame) + 1)).head(rows)
    frame = frame.rename(columns={"category": "label"})
    frame["text"] = [f"{t} #{i}" for i, t in enumerate(frame["text"])]
    policy = load_policy()
    labels = sorted(set(frame["label"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "batch.csv"
        frame.to_csv(path, index=False)
        holdout = read_batch(ROOT / "data" / "sample" / "holdout.csv", max_bytes=policy.data.max_file_bytes)
        run_suite(
            read_batch(path, max_bytes=policy.data.max_file_bytes), policy.data, labels=labels, holdout=holdout
        )  # warm-up: GE's lazy imports
        read_s, suite_s, cpu_s = [], [], []
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            batch = read_batch(path, max_bytes=policy.data.max_file_bytes)
            read_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            run_suite(batch, policy.data, labels=labels, holdout=holdout)
            suite_s.append(time.perf_counter() - start)
            # CPU time as well: on a shared machine wall time measures the neighbours too.
            cpu_s.append(time.process_time() - cpu)
    best_read, best_suite = min(read_s), min(suite_s)
    result = {
        "rows": rows,
        "repeats": repeats,
        "read_seconds_best": round(best_read, 4),
        "suite_seconds_best": round(best_suite, 4),
        "read_plus_suite_seconds_best": round(best_read + best_suite, 4),
        "read_plus_suite_cpu_seconds_best": round(min(cpu_s), 4),
        "suite_over_read_ratio": round(best_suite / best_read, 1),
    }
    print(
        f"validation of {rows} rows (no noise audit): read {best_read * 1000:.0f} ms + suite "
        f"{best_suite * 1000:.0f} ms = {(best_read + best_suite):.3f} s wall, {min(cpu_s):.3f} s CPU (best of {repeats}); "
        f"suite/read ratio {result['suite_over_read_ratio']}"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=arguments.at_least(2), default=16)
    parser.add_argument("--seed", type=arguments.at_least(0), default=0)
    parser.add_argument("--rows", type=arguments.at_least(2), default=1000)
    parser.add_argument("--repeats", type=arguments.at_least(1), default=5)
    args = parser.parse_args()
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "noise_audit": {
            "dataset": "banking77 train.csv",
            "per_class": args.per_class,
            "seed": args.seed,
            "runs": noise_runs(args.per_class, [0.0, 0.2, 0.4], args.seed),
        },
        "validation_speed": validation_speed(args.rows, args.repeats),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
