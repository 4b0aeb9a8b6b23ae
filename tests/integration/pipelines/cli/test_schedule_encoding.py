"""`tailor schedule --encoding` is checked before anything needs a Prefect server."""

from tests.conftest import run_cli


def test_schedule_refuses_an_encoding_python_does_not_know_before_it_needs_a_prefect_server(tmp_path):
    (tmp_path / "h.csv").write_text("text,label\nhi,a\n")
    (tmp_path / "data" / "incoming").mkdir(parents=True)
    done = run_cli(
        "schedule",
        "--name",
        "tickets",
        "--cron",
        "0 * * * *",
        "--holdout",
        "h.csv",
        "--encoding",
        "sjis-excel",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: --encoding 'sjis-excel' is not a text encoding Python knows")
    assert "Prefect server" not in done.stderr
