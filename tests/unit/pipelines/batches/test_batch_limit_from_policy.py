"""The batch size limit train, evaluate and the retrain's training step apply is the configured
policy's ``data.max_file_mb`` (TAILOR_POLICY), not the repository's policy.yaml looked up on the side."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.context import Context
from pipelines.policy import DEFAULT_POLICY
from tests.conftest import REPO

SAMPLE = REPO / "data" / "sample"
LIMIT_BYTES = 1_000  # the sample files are 3-10 kB: under the shipped 50 MB limit, over this one


@pytest.fixture
def small_limit(monkeypatch, tmp_path) -> Path:
    policy = tmp_path / "small.yaml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    assert "max_file_mb: 50.0\n" in text  # the shipped limit the configured one must win over
    policy.write_text(text.replace("max_file_mb: 50.0\n", f"max_file_mb: {LIMIT_BYTES / 1_000_000}\n"))
    monkeypatch.setenv("TAILOR_POLICY", str(policy))
    return policy


def _refused(argv: list[str], capsys) -> str:
    from pipelines.cli.main import run

    with pytest.raises(SystemExit) as code:
        run(argv)
    assert code.value.code != 0
    return capsys.readouterr().err


def test_train_refuses_a_batch_over_the_configured_policy_limit(small_limit, tmp_path, capsys):
    err = _refused(
        ["train", "--data", str(SAMPLE / "train.csv"), "--out", str(tmp_path / "a"), "--device", "cpu"], capsys
    )
    assert f"over the limit of {LIMIT_BYTES:,} bytes" in err
    assert not (tmp_path / "a").exists()


def test_evaluate_refuses_a_holdout_over_the_configured_policy_limit(small_limit, tmp_path, capsys):
    argv = ["evaluate", "--adapter", str(tmp_path / "no-adapter"), "--data", str(SAMPLE / "holdout.csv")]
    err = _refused([*argv, "--against", "none"], capsys)
    assert f"over the limit of {LIMIT_BYTES:,} bytes" in err


def test_the_retrain_training_child_gets_the_run_policy_limit(small_limit):
    from pipelines.training.job import TrainSetup

    ctx = Context.snapshot()
    assert TrainSetup.of(ctx.settings, ctx.policy).max_batch_bytes == LIMIT_BYTES


def test_the_shipped_policy_limit_lets_the_same_files_through(monkeypatch):
    from pipelines.batches.read import read_batch

    monkeypatch.setenv("TAILOR_POLICY", str(DEFAULT_POLICY))
    limit = Context.load().policy.data.max_file_bytes
    assert limit == 50_000_000
    assert len(read_batch(SAMPLE / "train.csv", max_bytes=limit)) > 0
