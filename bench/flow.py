"""Orchestration and checks overhead of the retrain flow: its wall time minus the training's, same run.

    .venv/bin/python -m bench.flow [--quick] [--per-class 16]

Runs the whole `retrain` flow (validate → train → evaluate → gate → register → promote to staging)
against a throw-away embedded SeaweedFS and Prefect's local test server, once on the shipped
sample set and once on Banking77 (16 examples per class from its train split, 5 per class of its
test split as the holdout; read in place from ../shared/datasets/banking77). Training wall time is
the cost meter's, measured inside the training step of the same run; everything else the flow
does (validation with the noise audit, the five checks, registering, promoting, Prefect's own
bookkeeping) is the overhead. Beside wall time, each run's CPU time (user + sys) of the whole
process tree (this process, the Prefect server, the store, the fork server and every child they
reaped), which a busy machine distorts less, and the load average before and after. Prints a table
and saves bench/results/flow.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

from bench import arguments
from bench.banking77 import read, sample

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"


def banking77_batches(folder: Path, per_class: int, holdout_per_class: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """Write a train batch, a holdout and a labels file sampled per class from Banking77."""

    def write(path: Path, frame, prefix: str) -> Path:
        ids = [f"{prefix}{i}" for i in range(len(frame))]
        frame.assign(id=ids).rename(columns={"category": "label"})[["id", "text", "label"]].to_csv(path, index=False)
        return path

    test = read("test")
    train = write(folder / "banking77_train.csv", sample(read("train"), per_class, seed), "b")
    holdout = write(folder / "banking77_holdout.csv", sample(test, holdout_per_class, seed), "h")
    labels = folder / "banking77_labels.txt"
    labels.write_text("\n".join(sorted(set(test.category))) + "\n")
    return train, holdout, labels


def tree_cpu_seconds() -> float:
    """User + sys seconds of this process, its descendants alive now, and every child any of them reaped."""
    import psutil

    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:  # ended while we looked: its parent's children times have it
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


def run(name: str, batch: Path, holdout: Path, labels: Path, workdir: Path) -> dict:
    from pipelines.orchestration import flows

    load_before, cpu_before = os.getloadavg()[0], tree_cpu_seconds()
    started = time.perf_counter()
    state = flows.retrain(batch, name, holdout, labels=labels, workdir=workdir, return_state=True)
    wall = time.perf_counter() - started
    cpu = tree_cpu_seconds() - cpu_before
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, BaseException):
        raise outcome
    train_s = outcome.train_seconds or 0.0
    return {
        "data": name,
        "rows": outcome.validation.rows,
        "status": outcome.status,
        "version": outcome.version,
        "gate_failures": [f.describe() for f in (outcome.gate.failures if outcome.gate else [])],
        "retrain_wall_s": round(wall, 2),
        "train_wall_s": round(train_s, 2),
        "overhead_s": round(wall - train_s, 2),
        "overhead_share": round((wall - train_s) / wall, 3),
        "tree_cpu_s": round(cpu, 1),
        "load_avg_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-class", type=arguments.at_least(2), default=16, help="Banking77 training examples per class"
    )
    parser.add_argument("--quick", action="store_true", help="the sample set only")
    args = parser.parse_args()

    from bench.embedded_store import store_env, temporary_store

    results = []
    with tempfile.TemporaryDirectory(prefix="tailor-bench-flow-") as tmp:
        root = Path(tmp)
        with temporary_store(root, "bench-flow") as cfg:
            os.environ.update(
                {
                    k: v
                    for k, v in store_env(cfg, root, TAILOR_DATA_DIR=str(root / "data")).items()
                    if k.startswith("TAILOR_")
                }
            )
            os.environ.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
            from prefect.testing.utilities import prefect_test_harness

            with prefect_test_harness(server_startup_timeout=180):
                sample_batch = root / "sample_train.csv"  # a copy: validation may move a batch into quarantine
                sample_batch.write_bytes((SAMPLE / "train.csv").read_bytes())
                cases = [("sample", sample_batch, SAMPLE / "holdout.csv", SAMPLE / "labels.txt")]
                if not args.quick:
                    cases.append((f"banking77-{args.per_class}pc", *banking77_batches(root, args.per_class, 5)))
                for name, batch, holdout, labels in cases:
                    results.append(run(name, batch, holdout, labels, root / "runs" / name))
                    print(json.dumps(results[-1]), flush=True)

    print(
        "\n| data | rows | status | retrain s | train s | overhead s | overhead share | CPU s (tree) | load avg |"
        "\n|---|---|---|---|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r['data']} | {r['rows']} | {r['status']} | {r['retrain_wall_s']} | {r['train_wall_s']} | "
            f"{r['overhead_s']} | {r['overhead_share']:.0%} | {r['tree_cpu_s']} | "
            f"{r['load_avg_1m'][0]} -> {r['load_avg_1m'][1]} |"
        )
    out = REPO / "bench" / "results" / "flow.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg_1m": os.getloadavg()[0]},
                "results": results,
            },
            indent=2,
        )
    )
    print(f"saved {out}")


if __name__ == "__main__":
    main()
