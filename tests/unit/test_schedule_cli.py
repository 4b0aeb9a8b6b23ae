"""`tailor schedule` refuses a bad schedule before it needs a Prefect server."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("cron", ["61 * * * *", "every hour", ""])
def test_a_bad_cron_expression_is_a_usage_error_naming_the_format(tmp_path, cron):
    done = run_cli("schedule", "--name", "tickets", "--cron", cron, "--holdout", str(tmp_path / "h.csv"), cwd=tmp_path)
    assert done.returncode == 2
    assert f"--cron {cron!r} is not a cron expression" in done.stderr and "five fields" in done.stderr
    assert "Traceback" not in done.stderr
