"""An empty argument is refused before any command runs: an empty path would mean the current folder."""

from __future__ import annotations

import shutil

import pytest

from pipelines.cli.main import run
from tests.conftest import REPO

SAMPLE = REPO / "data" / "sample" / "train.csv"


def _tailor(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_an_empty_report_dir_writes_nothing_into_the_working_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    batch = shutil.copy(SAMPLE, tmp_path / "batch.csv")
    code, err = _tailor(["validate", str(batch), "--no-noise-audit", "--no-track", "--report-dir", ""], capsys)
    assert code == 2
    assert err == "error: --report-dir is empty; give a value (a shell variable that expanded to nothing?)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv"]


@pytest.mark.parametrize(
    ("argv", "where"),
    [
        (["evaluate", "--adapter=", "--data", "holdout.csv"], "--adapter"),
        (["schedule", "--name", "tickets", "--cron", "", "--holdout", "h.csv"], "--cron"),
        (["list", ""], "the argument after 'list'"),
        (["show", "tickets", ""], "the argument after 'tickets'"),
        ([""], "the first argument"),
    ],
)
def test_an_empty_value_names_where_it_was_given(argv, where, capsys):
    code, err = _tailor(argv, capsys)
    assert code == 2
    assert err.startswith(f"error: {where} is empty; give a value")
