"""A monitor run as this machine's settings configure it: the CLI and the scheduled flow share it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def monitor_once(name: str, *, since: datetime | None, holdout: Path | None, monitoring_file: Path | None):
    """One monitor run as the configured identity, alerts to the configured webhooks (CLI and flow alike)."""
    from pipelines import webhooks
    from pipelines.config import load_settings
    from pipelines.monitoring import monitor
    from pipelines.monitoring.config import load_monitoring

    settings = load_settings()
    registry = settings.open_registry()

    def alert(event: webhooks.MonitorAlert) -> object:
        return webhooks.announce(event, urls=settings.webhooks, secret=settings.webhook_secret, store=registry.store)

    return monitor.run(registry, name, load_monitoring(monitoring_file), settings.base_model_dir, since=since,
                       holdout=holdout, alert=alert)  # fmt: skip
