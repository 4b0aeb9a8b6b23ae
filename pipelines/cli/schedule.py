"""`tailor schedule`: serve the scheduled `watch` deployment (plus `promote` and `rollback`) on the Prefect server."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.batches.text_encoding import codec_name
from pipelines.cli.file_option import ENCODING, POLICY_HELP
from pipelines.cli.flow_arguments import check_flow_arguments, configure_policy, require_store
from pipelines.cli.output import emit
from pipelines.cli.state import state
from registry.errors import ConfigError


def schedule(
    name: str = typer.Option(..., "--name", help="adapter name in the registry"),
    cron: str = typer.Option(..., "--cron", help="cron expression, e.g. '0 * * * *' (hourly)"),
    watch: Path = typer.Option(Path("data/incoming"), "--watch", help="folder where new batches arrive"),
    holdout: Path = typer.Option(..., "--holdout", help="labeled holdout the gate judges on"),
    labels: Path | None = typer.Option(None, "--labels", help="allowed labels, one per line (default: production's)"),
    policy: Path | None = typer.Option(None, "--policy", help=POLICY_HELP),
    encoding: str | None = ENCODING,
    as_json: bool = typer.Option(False, "--json", help="machine-readable start-up line"),
) -> None:
    """Retrain NAME on CRON whenever a new batch has arrived in WATCH. Runs until stopped (Ctrl-C / SIGTERM).

    Also serves the `promote` and `rollback` flows, so that a promotion
    started from the Prefect UI or API goes through the same registry
    rules and audit log as `tailor promote`. Every batch in WATCH is read
    in ENCODING (--encoding): a batch refused as unreadable is tried again
    when the schedule is restarted with another encoding and it is copied back in.
    """
    from pipelines.servers import prefect as prefect_server

    settings = state.settings()
    cfg = prefect_server.PrefectServerConfig(settings.prefect_dir, settings.prefect_port)
    # Before any Prefect import: Prefect reads its API URL when first imported, and without one the
    # runner started a temporary server of its own beside the persistent one.
    api = prefect_server.use_server(cfg)
    from pipelines.usecases import watch as watching

    watching.validate_cron(cron)
    check_flow_arguments(name, holdout, labels, policy)
    encoding = encoding and codec_name(encoding)
    if not watch.is_dir():
        raise ConfigError(f"--watch: {watch} {'is not a folder' if watch.exists() else 'does not exist'}")
    from pipelines.orchestration import flows

    watching.processed_batches(watching.state_file(settings.home, name))  # a damaged record would fail every tick
    require_store(name)
    configure_policy(policy)  # the flow runs it serves inherit it
    if api is None:
        raise ConfigError(
            f"no Prefect server answers at {cfg.api_url}: run `tailor prefect start` first "
            "(schedules need a persistent server)"
        )
    from prefect import serve
    from prefect.types.entrypoint import EntrypointType

    module = EntrypointType.MODULE_PATH  # runs from the installed package, whatever the working directory
    parameters = {
        "watch_dir": str(watch.resolve()),
        "name": name,
        "holdout": str(holdout.resolve()),
        "labels": labels and str(labels.resolve()),
        "encoding": encoding,
    }
    deployments = [
        flows.watch.to_deployment(
            name=name,
            cron=cron,
            parameters=parameters,
            entrypoint_type=module,
            description=f"retrain {name} on new batches in {watch}",
        ),
        flows.promote.to_deployment(name=name, entrypoint_type=module, parameters={"name": name}),
        flows.rollback.to_deployment(name=name, entrypoint_type=module, parameters={"name": name}),
    ]
    emit(
        {
            "api_url": api,
            "name": name,
            "cron": cron,
            "watch": watch.resolve(),
            "encoding": encoding or "utf-8",
            "deployments": [f"{d.flow_name}/{d.name}" for d in deployments],
        },
        as_json=as_json,
        text=f"serving watch/{name} ({cron}, watching {watch}), promote/{name}, rollback/{name} on {api}",
    )
    serve(*deployments, print_starting_message=False)


def attach(app: typer.Typer) -> None:
    app.command("schedule")(schedule)
