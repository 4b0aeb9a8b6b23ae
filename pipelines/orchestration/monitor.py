"""The `monitor` Prefect flow: `tailor monitor` on a schedule, deployed as `monitor/NAME`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from prefect import flow, get_run_logger

from pipelines.context import Context
from pipelines.usecases.monitoring import monitor_once


@flow(name="monitor")
def monitor(name: str, window_hours: float = 24.0, holdout: str | None = None, monitoring_file: str | None = None):
    """Judge the last ``window_hours`` of recorded traffic of ``name`` (and expire what is past retention)."""
    since = datetime.now(timezone.utc) - timedelta(hours=window_hours)
    result = monitor_once(
        Context.snapshot(),
        name,
        since=since,
        holdout=Path(holdout) if holdout else None,
        monitoring_file=Path(monitoring_file) if monitoring_file else None,
    )
    get_run_logger().info("%s: %s", name, result.summary)
    return result.model_dump(mode="json")
