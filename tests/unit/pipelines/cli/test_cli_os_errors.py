"""Output paths the system refuses are one line naming the path, exit 1, and lose nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.cli.main import run
from tests.conftest import REPO

SAMPLE = REPO / "data" / "sample" / "train.csv"


def _tailor(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_train_into_a_folder_under_a_file_names_the_file(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    code, err = _tailor(["train", "--data", str(SAMPLE), "--out", str(tmp_path / "notes.txt" / "run")], capsys)
    assert code == 1
    assert (
        err == f"error: {tmp_path / 'notes.txt'} exists and is not a folder; choose a path whose folders are folders\n"
    )
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_ctrl_c_during_a_command_says_interrupted_and_exits_130(tmp_path, capsys, monkeypatch):
    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pipelines.batches.read.read_batch", interrupted)
    code, err = _tailor(["train", "--data", str(SAMPLE), "--out", str(tmp_path / "run")], capsys)
    assert (code, err) == (130, "interrupted\n")
    assert not (tmp_path / "run").exists()


def test_validate_with_a_report_dir_under_a_file_keeps_the_batch_and_says_why(tmp_path, capsys):
    batch = shutil.copy(SAMPLE, tmp_path / "batch.csv")
    (tmp_path / "notes.txt").write_text("mine")
    report_dir = tmp_path / "notes.txt" / "reports"
    code, err = _tailor(
        ["validate", str(batch), "--no-noise-audit", "--no-track", "--report-dir", str(report_dir)], capsys
    )
    assert code == 2  # refused as a usage error before the batch is read, tracked or pushed
    assert "Traceback" not in err
    assert "is a file, not a folder" in err and str(tmp_path / "notes.txt") in err
    assert Path(batch).read_bytes() == SAMPLE.read_bytes()


def test_evaluate_refuses_an_out_that_is_a_file_before_loading_any_model(tmp_path):
    from pipelines.batches.read import read_batch
    from pipelines.evaluation.checks.suite import evaluate
    from pipelines.policy import DataPolicy, load_policy

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        # The adapter and base model folders do not exist: reaching them would raise NotFoundError.
        evaluate(
            tmp_path / "no-adapter",
            read_batch(SAMPLE, max_bytes=DataPolicy().max_file_bytes),
            load_policy(),
            base_model_dir=tmp_path / "no-model",
            base_model_id="m",
            cache_dir=None,
            out_dir=tmp_path / "notes.txt",
        )
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"
