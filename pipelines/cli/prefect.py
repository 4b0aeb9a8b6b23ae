"""`tailor prefect start|stop|status`: the persistent local Prefect server that schedules run on."""

from __future__ import annotations

import typer

from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.servers import prefect as prefect_server

app = typer.Typer(
    help="Run a persistent Prefect server on 127.0.0.1 (schedules, UI, work pools).", no_args_is_help=True
)


def server_config() -> prefect_server.PrefectServerConfig:
    settings = state.settings()
    return prefect_server.PrefectServerConfig(home=settings.prefect_dir, port=settings.prefect_port)


@app.command()
def start(
    as_json: bool = JSON, timeout: float = typer.Option(180.0, min=1, help="seconds to wait for the API")
) -> None:
    """Start the server (idempotent), wait until its API answers, and make it mark killed runs Crashed."""
    cfg = server_config()
    status, started = prefect_server.start(cfg, timeout=timeout)
    prefect_server.ensure_crash_detection(cfg)
    text = (
        f"started Prefect server (pid {status.pid}): UI {status.ui_url}, API {status.api_url}"
        if started
        else f"already running (pid {status.pid}): UI {status.ui_url}"
    )
    emit({**vars(status), "started": started}, as_json=as_json, text=text)


@app.command()
def stop(as_json: bool = JSON) -> None:
    """Stop the server. Its database (runs, deployments, schedules) stays in the Prefect home."""
    stopped = prefect_server.stop(server_config())
    emit({"stopped": stopped}, as_json=as_json, text="stopped" if stopped else "not running")


@app.command()
def status(as_json: bool = JSON) -> None:
    """Show API and UI URLs, pid, health, home and log file. Exit 1 when not healthy."""
    current = prefect_server.status(server_config())
    emit(current, as_json=as_json)
    if not current.healthy:
        raise typer.Exit(1)


def attach(parent: typer.Typer) -> None:
    parent.add_typer(app, name="prefect")
