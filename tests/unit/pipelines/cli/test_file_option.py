"""An option that names a file to write refuses a path that names a folder, before anything runs."""

from __future__ import annotations

import pytest

from pipelines.cli.main import run


def _tailor(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_report_out_with_a_trailing_slash_is_refused_instead_of_writing_a_file_of_that_name(tmp_path, capsys):
    code, err = _tailor(["report", "tickets", "v1", "--out", f"{tmp_path}/reports/"], capsys)
    assert code == 2
    assert f"{tmp_path}/reports/ is a folder; give the path of the file to write inside it" in err
    assert not (tmp_path / "reports").exists()


def test_gate_out_naming_an_existing_folder_is_refused_and_the_folder_kept(tmp_path, capsys):
    (tmp_path / "decisions").mkdir()
    (tmp_path / "decisions" / "old.json").write_text("{}")
    code, err = _tailor(
        ["gate", "--decision", str(tmp_path / "missing.json"), "--out", str(tmp_path / "decisions")], capsys
    )
    assert code == 2
    assert "is a folder; give the path of the file to write inside it" in err
    assert (tmp_path / "decisions" / "old.json").read_text(encoding="utf-8") == "{}"


@pytest.mark.parametrize("under", ["", "sub"])
def test_validate_report_dir_naming_a_file_is_refused_before_the_batch_is_touched(tmp_path, capsys, monkeypatch, under):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAILOR_HOME", str(tmp_path / "home"))
    batch = tmp_path / "b.csv"
    batch.write_text("text,label\nhello,a\n")
    taken = tmp_path / "report.txt"
    taken.write_text("keep me")
    code, err = _tailor(["validate", str(batch), "--no-noise-audit", "--report-dir", str(taken / under)], capsys)
    assert code == 2
    assert f"{taken} is a file, not a folder; give a folder for the report" in err
    assert taken.read_text(encoding="utf-8") == "keep me" and batch.is_file() and not (tmp_path / "b.csv.dvc").exists()
