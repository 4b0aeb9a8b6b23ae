"""`tailor monitor --cron` refuses a bad schedule before it needs a Prefect server; the flow deploys as monitor/NAME."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cron", "61 * * * *"], "--cron '61 * * * *' is not a cron expression"),
        (["--cron", "0 0 31 2 *"], "never fires"),
        (["--name", "../x", "--cron", "0 * * * *"], "adapter name '../x' is refused"),
        (["--cron", "0 * * * *", "--since", "2h"], "--since picks the traffic of one run"),
    ],
)
def test_a_bad_monitor_schedule_is_refused_before_looking_for_a_prefect_server(tmp_path, args, message):
    done = run_cli("monitor", "--name", "tickets", *args, cwd=tmp_path)
    assert done.returncode in (1, 2) and message in done.stderr, done.stderr
    assert "Prefect server" not in done.stderr


def test_the_monitor_flow_deploys_as_monitor_slash_name_with_its_schedule():
    from pipelines.orchestration.monitor import monitor

    deployment = monitor.to_deployment(name="tickets", cron="0 * * * *", parameters={"name": "tickets"})
    assert f"{deployment.flow_name}/{deployment.name}" == "monitor/tickets"
    assert deployment.schedules[0].schedule.cron == "0 * * * *"
