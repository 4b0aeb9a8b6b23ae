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
    code, err = _tailor(["gate", "--decision", str(tmp_path / "missing.json"), "--out", str(tmp_path / "decisions")],
                        capsys)  # fmt: skip
    assert code == 2
    assert "is a folder; give the path of the file to write inside it" in err
    assert (tmp_path / "decisions" / "old.json").read_text() == "{}"
