"""One monitor run as this command's or flow run's context configures it: the CLI and the scheduled flow share it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.context import Context
    from pipelines.monitoring.monitor import MonitorResult


def monitor_once(
    ctx: "Context", name: str, *, since: datetime | None, holdout: Path | None, monitoring_file: Path | None
) -> "MonitorResult":
    """One monitor run as the context's identity, alerts to its webhooks."""
    from pipelines import webhooks
    from pipelines.monitoring import monitor
    from pipelines.monitoring.config import load_monitoring

    settings = ctx.settings
    registry = ctx.registry()

    def alert(event: webhooks.MonitorAlert) -> object:
        return webhooks.announce(event, urls=settings.webhooks, secret=settings.webhook_secret, store=registry.store)

    return monitor.run(
        registry,
        name,
        load_monitoring(monitoring_file),
        settings.base_model_dir,
        max_bytes=ctx.policy.data.max_file_bytes,
        since=since,
        holdout=holdout,
        alert=alert,
    )
