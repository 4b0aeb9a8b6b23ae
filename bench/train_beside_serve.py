"""Serving p95 while a training run shares the host, against the same server idle.

One process answers single-text requests as `tailor serve` does (the adapter unmerged on the shared
base, torch's default threads) in three phases: idle, beside `tailor train` at the shipped training
share (nice 10, every core but one), and beside `tailor train` with no share (nice 0, every core),
each for --window seconds from the training's start (then the training is stopped).
The idle phase runs before and after the others and counts once, so a change in the rest of the
machine shows up as a difference between the two idle halves rather than as a ratio.

    .venv/bin/python bench/train_beside_serve.py [--calls-idle 80]

Prints a table and saves bench/results/train_beside_serve.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402

SAMPLE = REPO / "data" / "sample"
TAILOR = str(Path(sys.executable).parent / "tailor")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"calls": len(ms), "p50_ms": round(percentile(ms, 0.5), 2), "p95_ms": round(percentile(ms, 0.95), 2)}


def serve_calls(predict, texts: list[str], *, calls: int | None = None, seconds: float | None = None) -> list[float]:
    """Time single-text calls: ``calls`` of them, or as many as fit in ``seconds``."""
    ms, i, until = [], 0, time.monotonic() + (seconds or 0)
    while (calls is not None and i < calls) or (seconds is not None and time.monotonic() < until):
        began = time.perf_counter()
        predict([texts[i % len(texts)]])
        ms.append((time.perf_counter() - began) * 1000)
        i += 1
    return ms


def train_process(out: Path, work: Path, *, niceness: int, threads: int, steps: int) -> subprocess.Popen:
    params = work / f"params-{steps}.yaml"
    params.write_text(f"train:\n  min_steps: {steps}\n  max_steps: {steps}\n", encoding="utf-8")
    env = {
        **os.environ,
        "TAILOR_HOME": str(work / "home"),
        "TAILOR_TRAIN_NICENESS": str(niceness),
        "TAILOR_TRAIN_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    return subprocess.Popen(
        [
            TAILOR,
            "train",
            "--data",
            str(SAMPLE / "train.csv"),
            "--out",
            str(out),
            "--noise-filter",
            "none",
            "--params",
            str(params),
            "--json",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls-idle", type=arguments.at_least(20), default=80, help="calls per idle half")
    parser.add_argument(
        "--train-steps", type=arguments.at_least(1), default=30, help="optimiser steps per training run"
    )
    parser.add_argument(
        "--window",
        type=arguments.at_least(10),
        default=60,
        help="seconds of serving timed beside each training run, from its start (then it is stopped)",
    )
    args = parser.parse_args()

    from pipelines.batches.read import read_batch
    from pipelines.policy import DataPolicy
    from pipelines.settings import load_settings
    from serving.model import load_base, load_classifier

    settings = load_settings()
    texts = read_batch(SAMPLE / "holdout.csv", max_bytes=DataPolicy().max_file_bytes).texts
    with tempfile.TemporaryDirectory(prefix="bench-train-serve-") as tmp:
        work = Path(tmp)
        first = train_process(work / "adapter", work, niceness=0, threads=0, steps=1)  # its speed, not its skill
        if first.wait() != 0:
            raise SystemExit(f"training the served adapter failed: {first.stderr.read()[-800:]}")
        base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=work)
        predict = load_classifier(work / "adapter", base).predict_proba
        serve_calls(predict, texts, calls=5)  # warm-up
        idle = serve_calls(predict, texts, calls=args.calls_idle)
        phases = {}
        for label, niceness, threads in (
            ("beside training, shared (nice 10, cores - 1)", 10, 0),
            ("beside training, no share (nice 0, all cores)", 0, os.cpu_count() or 1),
        ):
            print(f"serving {label} …", flush=True)
            proc = train_process(
                work / f"run-{niceness}", work, niceness=niceness, threads=threads, steps=args.train_steps
            )
            ms = serve_calls(predict, texts, seconds=args.window)
            finished = proc.poll() is not None
            if finished and proc.returncode != 0:
                raise SystemExit(f"training failed: {proc.stderr.read()[-800:]}")
            proc.kill()
            proc.wait()
            phases[label] = {**summary(ms), "training_finished_in_window": finished}
        idle_after = serve_calls(predict, texts, calls=args.calls_idle)
    idle_all = summary(idle + idle_after)
    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "idle": {**idle_all, "first_half": summary(idle), "second_half": summary(idle_after)},
        "phases": {
            label: {
                **p,
                "p95_vs_idle": round(p["p95_ms"] / idle_all["p95_ms"], 2),
                "p50_vs_idle": round(p["p50_ms"] / idle_all["p50_ms"], 2),
            }
            for label, p in phases.items()
        },
    }
    out = REPO / "bench" / "results" / "train_beside_serve.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(
        f"| phase | calls | p50 ms | p95 ms | p95 vs idle | training finished in the window |\n|---|---|---|---|---|---|\n"
        f"| idle (before + after) | {idle_all['calls']} | {idle_all['p50_ms']} | {idle_all['p95_ms']} | 1.00 | |"
    )
    for label, p in results["phases"].items():
        print(
            f"| {label} | {p['calls']} | {p['p50_ms']} | {p['p95_ms']} | {p['p95_vs_idle']} | "
            f"{p['training_finished_in_window']} |"
        )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
