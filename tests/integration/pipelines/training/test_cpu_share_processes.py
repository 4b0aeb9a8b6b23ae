"""Training shares the host, seen from child processes: a lowered priority cannot be raised again by the test."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


def test_every_thread_is_lowered_and_torch_and_blas_get_their_threads_back_after_training():
    # In a child: a lowered priority cannot be raised again by the test process.
    code = """
import json, os, threading, time, numpy, torch
from threadpoolctl import threadpool_info, threadpool_limits
from pipelines.training.cpu_share import training_share
torch.set_num_threads(2)
threadpool_limits(2, user_api="blas")
def blas():
    return sorted({pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"})
stop = threading.Event()
early = threading.Thread(target=stop.wait); early.start()  # a thread started before training
with training_share(7, 1) as (niceness, threads):
    inside = torch.get_num_threads()
    blas_inside = blas()
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    nice = {os.getpriority(os.PRIO_PROCESS, t) for t in tids}
stop.set(); early.join()
print(json.dumps({"niceness": niceness, "threads": threads, "inside": inside, "after": torch.get_num_threads(),
                  "nice": sorted(nice), "blas_inside": blas_inside, "blas_after": blas()}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout.splitlines()[-1])
    # The logistic regressions of the noise filter and the head run on numpy's BLAS: capped as torch is.
    assert got == {
        "niceness": 7,
        "threads": 1,
        "inside": 1,
        "after": 2,
        "nice": [7],
        "blas_inside": [1],
        "blas_after": [2],
    }


def report_share(out: str) -> None:
    """Run in the training child: what it ran at."""
    import os

    import torch

    Path(out).write_text(
        json.dumps(
            {"nice": os.getpriority(os.PRIO_PROCESS, 0), "threads": torch.get_num_threads(), "pid": os.getpid()}
        ),
        encoding="utf-8",
    )


def fail_to_train(message: str) -> None:
    raise ValueError(message)


def test_a_flow_trains_in_a_lowered_child_and_keeps_its_own_priority(tmp_path):
    import os

    from pipelines.training.cpu_share import TrainingProcessError, run_in_share

    before = os.getpriority(os.PRIO_PROCESS, 0)
    run_in_share(report_share, str(tmp_path / "share.json"), niceness=before + 5, threads_setting=1)
    child = json.loads((tmp_path / "share.json").read_text(encoding="utf-8"))
    assert child["nice"] == before + 5 and child["threads"] == 1 and child["pid"] != os.getpid()
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # what evaluates next is not a background job
    with pytest.raises(TrainingProcessError, match="ValueError: batch has no rows"):
        run_in_share(fail_to_train, "batch has no rows", niceness=before, threads_setting=1)
