"""`tailor schedule` refuses a bad schedule before it needs a Prefect server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 12 31 4,6 *"])
def test_a_cron_expression_that_never_fires_is_refused(tmp_path, cron):
    done = run_cli("schedule", "--name", "tickets", "--cron", cron, "--holdout", str(tmp_path / "h.csv"), cwd=tmp_path)
    assert done.returncode == 2
    assert f"--cron {cron!r} never fires: no month has that day" in done.stderr


@pytest.mark.parametrize("cron", ["61 * * * *", "every hour", "* * * * * *", "0 */20 * * * *"])  # 6 fields: seconds
def test_a_bad_cron_expression_is_a_usage_error_naming_the_format(tmp_path, cron):
    done = run_cli("schedule", "--name", "tickets", "--cron", cron, "--holdout", str(tmp_path / "h.csv"), cwd=tmp_path)
    assert done.returncode == 2
    assert f"--cron {cron!r} is not a cron expression" in done.stderr and "five fields" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--name", "../x"], "adapter name '../x' is refused"),
        (["--policy", "/dev/zero"], "policy file /dev/zero is a device, pipe or socket, not a file"),
        (["--labels", "labels.txt"], "labels file labels.txt does not exist"),
        (["--watch", "h.csv"], "--watch: h.csv is not a folder"),
    ],
)
def test_a_bad_flow_argument_is_refused_at_start_not_at_every_scheduled_run(tmp_path, extra, message):
    (tmp_path / "h.csv").write_text("text,label\nhi,a\n")
    done = run_cli("schedule", "--name", "tickets", "--cron", "0 * * * *", "--holdout", "h.csv", *extra, cwd=tmp_path)
    assert done.returncode in (1, 2) and done.stderr.startswith(f"error: {message}"), done.stderr
    assert "Prefect server" not in done.stderr  # refused before one was even looked for


def test_a_damaged_record_of_processed_batches_is_refused_at_start_not_at_every_tick(tmp_path):
    (tmp_path / "h.csv").write_text("text,label\nhi,a\n")
    (tmp_path / "data" / "incoming").mkdir(parents=True)
    record = tmp_path / ".tailor" / "schedule" / "tickets.json"
    record.parent.mkdir(parents=True)
    record.write_text("")  # as a full disk or a crash can leave it
    done = run_cli("schedule", "--name", "tickets", "--cron", "0 * * * *", "--holdout", "h.csv", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"error: {Path('.tailor/schedule/tickets.json')}, the schedule's record of processed batches, is not JSON"
    )
    assert record.read_text(encoding="utf-8") == ""
