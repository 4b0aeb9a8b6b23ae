"""The monitor flow deploys as monitor/NAME with its schedule (`tailor monitor --cron` itself:
tests/integration/pipelines/cli/test_monitor_cli.py)."""

from __future__ import annotations


def test_the_monitor_flow_deploys_as_monitor_slash_name_with_its_schedule():
    from pipelines.orchestration.monitor import monitor

    deployment = monitor.to_deployment(name="tickets", cron="0 * * * *", parameters={"name": "tickets"})
    assert f"{deployment.flow_name}/{deployment.name}" == "monitor/tickets"
    assert deployment.schedules[0].schedule.cron == "0 * * * *"
