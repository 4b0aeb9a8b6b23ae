"""The benchmarks refuse a bad argument before any work starts, in one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sizes", "0"], "argument --sizes: must be at least 2, got 0"),
        (["--seeds", "x"], "argument --seeds: expected a whole number, got 'x'"),
        (["--noise", "1.5"], "argument --noise: must be at least 0 and below 1, got 1.5"),
        (["--set", "lr"], "argument --set: expected KEY=VALUE, got 'lr'"),
        (["--set", "nope=1"], "--set: " + str(REPO / "params.yaml") + " train parameters invalid: nope: unknown key"),
        (["--data", "/nonexistent"], "argument --data: /nonexistent lacks train.csv and test.csv"),
        (["--full-lr", "0"], "argument --full-lr: must be above 0, got 0.0"),
    ],
)
def test_bench_train_refuses_a_bad_argument_before_it_starts(argv, message):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "train.py"), *argv], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "1"], "argument --steps: must be at least 2, got 1"),
        (["--texts", "many"], "argument --texts: expected a whole number, got 'many'"),
    ],
)
def test_bench_explain_refuses_a_bad_argument_before_it_starts(argv, message):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "explain.py"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
