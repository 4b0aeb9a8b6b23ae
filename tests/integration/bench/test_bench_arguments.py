"""The benchmarks refuse a bad argument before any work starts, in one line naming it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize(
    "script, argv, message",
    [
        ("train", ["--sizes", "0"], "argument --sizes: must be at least 2, got 0"),
        ("train", ["--seeds", "x"], "argument --seeds: expected a whole number, got 'x'"),
        ("train", ["--noise", "1.5"], "argument --noise: must be at least 0 and below 1, got 1.5"),
        ("train", ["--set", "lr"], "argument --set: expected KEY=VALUE, got 'lr'"),
        (
            "train",
            ["--set", "nope=1"],
            "--set: " + str(REPO / "params.yaml") + " train parameters invalid: nope: unknown key",
        ),
        ("train", ["--data", "/nonexistent"], "argument --data: /nonexistent lacks train.csv and test.csv"),
        ("train", ["--full-lr", "0"], "argument --full-lr: must be above 0, got 0.0"),
        ("train", ["--extra-test-per-class", "0"], "argument --extra-test-per-class: must be at least 1, got 0"),
        ("explain", ["--steps", "1"], "argument --steps: must be at least 2, got 1"),
        ("explain", ["--texts", "many"], "argument --texts: expected a whole number, got 'many'"),
    ],
)
def test_bench_refuses_a_bad_argument_before_it_starts(script, argv, message):
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / f"{script}.py"), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr


def test_train_bench_refuses_to_hold_out_rows_a_sample_needs(tmp_path):
    rows = ["text,category"] + [f"lost card {i},card_lost" for i in range(3)] + [f"pin {i},pin" for i in range(5)]
    for split in ("train", "test"):
        (tmp_path / f"{split}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "train.py"),
            *("--data", str(tmp_path), "--sizes", "2", "--noise", "--extra-test-per-class", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert (
        "argument --extra-test-per-class: 2 would leave class 'card_lost' (3 rows in train) fewer than the 2 rows "
        "a 2-per-class sample takes; at most 1 here" in done.stderr
    )
