"""What starting a training child costs: a fresh interpreter (spawn) against the warmed fork server.

    .venv/bin/python -m bench.train_child [--rounds 2]

Each child imports the training modules (``job.TRAINING_MODULES``) and ends, so what is timed is the
start a training step waits for before it trains. The first fork-server child is started right
after ``job.warm_up()``, with nothing to hide the server's imports behind; then spawn and fork-server
children alternate in this process. Prints and saves bench/results/train_child.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import time
from pathlib import Path

from bench import arguments

REPO = Path(__file__).resolve().parents[1]


def import_training_modules() -> None:
    from pipelines.training.job import TRAINING_MODULES

    for name in TRAINING_MODULES:
        importlib.import_module(name)


def timed(start) -> float:
    t0 = time.perf_counter()
    start()
    return round(time.perf_counter() - t0, 2)


def spawned() -> None:
    child = multiprocessing.get_context("spawn").Process(target=import_training_modules)
    child.start()
    child.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=arguments.at_least(1), default=2, help="children of each kind")
    args = parser.parse_args()

    from pipelines.training import job
    from pipelines.training.cpu_share import run_in_share

    def from_server() -> None:
        run_in_share(import_training_modules, niceness=os.getpriority(os.PRIO_PROCESS, 0), threads_setting=1)

    result = {"load_avg_1m_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    job.warm_up()
    result["fork_server_first_s"] = timed(from_server)
    result["spawn_s"], result["fork_server_s"] = [], []
    for _ in range(args.rounds):
        result["spawn_s"].append(timed(spawned))
        result["fork_server_s"].append(timed(from_server))
    result["load_avg_1m_after"] = os.getloadavg()[0]
    print(json.dumps(result))
    out = REPO / "bench" / "results" / "train_child.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"saved {out}")


if __name__ == "__main__":
    main()
