"""`tailor monitor` (live traffic against production's reference) and `tailor traffic delete` (APPI erasure)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer

from pipelines.cli.output import emit
from pipelines.cli.state import state
from registry.errors import ConfigError

traffic_app = typer.Typer(help="Recorded traffic (personal data): erase on request.", no_args_is_help=True)


def parse_when(value: str | None, option: str) -> datetime | None:
    """An ISO 8601 time (UTC when it names no zone), or a duration back from now: 30m, 24h, 7d.

    Raises:
        ConfigError: neither, naming ``option``.
    """
    if value is None:
        return None
    units = {"m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.fromtimestamp(
            datetime.now(timezone.utc).timestamp() - int(value[:-1]) * units[value[-1]], timezone.utc
        )
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{option} {value!r} is neither an ISO 8601 time (2026-12-01T09:00) nor a duration "
            "back from now (30m, 24h, 7d)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def monitor(
    name: str = typer.Option(..., "--name", help="adapter name in the registry"),
    since: str | None = typer.Option(None, "--since", help="traffic recorded since: ISO time or 30m / 24h / 7d"),
    holdout: Path | None = typer.Option(
        None,
        "--holdout",
        help="labeled holdout: predicted labels and confidence "
        "on it are the baseline (default: reference.csv's labels, no confidence)",
    ),
    monitoring: Path | None = typer.Option(None, "--monitoring", help="monitoring file (default: monitoring.yaml)"),
    listing: bool = typer.Option(False, "--list", help="list the stored results instead of running"),
    cron: str | None = typer.Option(
        None,
        "--cron",
        help="serve the Prefect deployment monitor/NAME on this "
        "schedule (runs until stopped); each run judges the last --window-hours",
    ),
    window_hours: float = typer.Option(24.0, "--window-hours", min=0.01, help="with --cron: hours of traffic judged"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Compare NAME's recorded live traffic with its production version's reference and holdout.

    Exit code 1 when a limit of the monitoring file is crossed (announced to the webhooks).
    """
    from pipelines.monitoring.config import load_monitoring

    load_monitoring(monitoring)  # a bad file fails here, before any model or store is touched
    if since is not None and (listing or cron is not None):
        raise ConfigError(
            "--since picks the traffic of one run: a scheduled run judges the last --window-hours, "
            "and --list shows every stored result"
        )
    if holdout is not None and not holdout.is_file():
        raise ConfigError(f"--holdout: {holdout} {'is not a file' if holdout.exists() else 'does not exist'}")
    if listing:
        from pipelines.monitoring.monitor import stored_results

        results = stored_results(state.context().registry().store, name)
        emit(
            results,
            as_json=as_json,
            text="\n".join(f"{r.at:%Y-%m-%d %H:%M} {r.run_id} {r.version}: {r.summary}" for r in results)
            or f"no monitor result for {name}",
        )
        return
    if cron is not None:
        _schedule(name, cron, window_hours, holdout, monitoring, as_json)
        return
    from pipelines.usecases.monitoring import monitor_once

    result = monitor_once(
        state.context(), name, since=parse_when(since, "--since"), holdout=holdout, monitoring_file=monitoring
    )
    emit(result, as_json=as_json, text=f"{name} {result.version}: {result.summary} (stored at {result.key})")
    if result.crossed:
        raise typer.Exit(1)


def _schedule(
    name: str, cron: str, window_hours: float, holdout: Path | None, monitoring: Path | None, as_json: bool
) -> None:
    from pipelines.servers import prefect as prefect_server
    from pipelines.usecases.watch import validate_cron
    from registry.manifest import validate_name

    validate_name(name)
    settings = state.settings()
    cfg = prefect_server.PrefectServerConfig(settings.prefect_dir, settings.prefect_port)
    api = prefect_server.use_server(cfg)  # before Prefect is imported: see `tailor schedule`
    validate_cron(cron)
    if api is None:
        raise ConfigError(
            f"no Prefect server answers at {cfg.api_url}: run `tailor prefect start` first "
            "(schedules need a persistent server)"
        )
    from prefect import serve
    from prefect.types.entrypoint import EntrypointType

    from pipelines.orchestration.monitor import monitor as monitor_flow

    parameters = {
        "name": name,
        "window_hours": window_hours,
        "holdout": holdout and str(holdout.resolve()),
        "monitoring_file": monitoring and str(monitoring.resolve()),
    }
    deployment = monitor_flow.to_deployment(
        name=name,
        cron=cron,
        parameters=parameters,
        entrypoint_type=EntrypointType.MODULE_PATH,
        description=f"monitor live traffic of {name}",
    )
    emit(
        {"api_url": api, "deployment": f"monitor/{name}", "cron": cron},
        as_json=as_json,
        text=f"serving monitor/{name} ({cron}) on {api}",
    )
    serve(deployment, print_starting_message=False)


@traffic_app.command("delete")
def delete(
    name: str = typer.Option(..., "--name", help="adapter name whose recorded traffic is erased"),
    request_id: str | None = typer.Option(None, "--request-id", help="erase the rows of this request"),
    before: str | None = typer.Option(None, "--before", help="erase everything recorded before: ISO time or 7d"),
    reason: str = typer.Option(..., "--reason", help="whose request or which rule this erasure answers (audited)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Erase recorded traffic for good (every object version), as an admin, with an audit event."""
    from pipelines.monitoring.retention import erase

    erased, event = erase(
        state.context().registry(), name, reason=reason, request_id=request_id, before=parse_when(before, "--before")
    )
    emit(
        {"erased": erased, "audit_seq": event.seq},
        as_json=as_json,
        text=f"erased {erased.rows} rows of {name} ({len(erased.batches)} batches removed, "
        f"{len(erased.rewritten)} rewritten); audit event {event.seq}",
    )


def attach(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
    app.add_typer(traffic_app, name="traffic")
