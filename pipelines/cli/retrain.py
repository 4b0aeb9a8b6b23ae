"""`tailor retrain`: the whole retrain flow (validate → train → evaluate → gate → register → promote) on one batch."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.batches.text_encoding import codec_name
from pipelines.cli.choices import Device
from pipelines.cli.file_option import ENCODING, POLICY_HELP
from pipelines.cli.flow_arguments import check_flow_arguments, configure_policy, require_store
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from registry.errors import TailorError, first_line


def connect_prefect() -> str | None:
    """Use the persistent Prefect server when it runs (else Prefect's temporary one); before importing flows."""
    from pipelines.servers import prefect as prefect_server

    settings = state.settings()
    return prefect_server.use_server(prefect_server.PrefectServerConfig(settings.prefect_dir, settings.prefect_port))


def retrain(
    data: Path = typer.Option(..., "--data", help="labeled batch: CSV, JSONL or Parquet (text, label[, group, id])"),
    name: str = typer.Option(..., "--name", help="adapter name in the registry"),
    holdout: Path = typer.Option(..., "--holdout", help="labeled holdout the gate judges on"),
    labels: Path | None = typer.Option(None, "--labels", help="allowed labels, one per line (default: production's)"),
    policy: Path | None = typer.Option(None, "--policy", help=POLICY_HELP),
    device: Device = typer.Option("auto", "--device", help="where training and the checks run"),
    encoding: str | None = ENCODING,
    card: Path | None = typer.Option(
        None,
        "--card",
        help="model card (YAML or JSON: intended_use, limitations, languages) registered with the new version",
    ),
    as_json: bool = JSON,
) -> None:
    """Retrain NAME on a batch. Exit 1 when the batch or the gate rejects the candidate."""
    check_flow_arguments(name, holdout, labels, policy, data=data, device=device)
    if card is not None:
        from pipelines.model_card_file import read_card

        read_card(card)  # a malformed card is refused before the training it would follow
    encoding = encoding and codec_name(encoding)
    require_store(name)
    configure_policy(policy)
    api = connect_prefect()
    import httpx

    from pipelines.orchestration.flows import retrain as retrain_flow
    from pipelines.usecases.retrain import lost_run_fate

    try:
        final = retrain_flow(
            data.resolve(),
            name,
            holdout.resolve(),
            labels=labels and labels.resolve(),
            device=device,
            encoding=encoding,
            card=card and card.resolve(),
            return_state=True,
        )
    except httpx.TransportError as err:
        raise TailorError(
            f"the Prefect server{f' at {api}' if api else ''} stopped answering during the run "
            f"({first_line(err)}), and its outcome is lost: {lost_run_fate(state.context(), data, name)}"
        ) from None
    outcome = final.result(raise_on_failure=False)
    if isinstance(outcome, BaseException):  # the flow crashed (not a rejection): surface the error itself
        raise outcome
    emit(outcome, as_json=as_json, text=describe(outcome))
    if outcome.rejected:
        raise typer.Exit(1)


def describe(outcome) -> str:
    """A few lines a person reads after a retrain."""
    lines = [f"{outcome.name}: {outcome.status.replace('_', ' ')} ({outcome.total_seconds:.0f}s)"]
    if outcome.status == "rejected_data":
        lines += [f"  validation failed: {f.name} ({f.count})" for f in outcome.validation.failures]
    if outcome.version:
        gate = outcome.gate.verdict if outcome.gate else "none"
        lines.append(
            f"  registered {outcome.name} {outcome.version}, gate {gate if gate == 'passed' else gate.upper()}"
        )
        if outcome.gate and not outcome.gate.passed:
            lines += [f"  gate: {f.describe()}" for f in outcome.gate.failures]
    if outcome.promoted_to:
        lines.append(f"  promoted to {', '.join(outcome.promoted_to)}")
    lines += [f"  {note}" for note in outcome.notes]
    return "\n".join(lines)


def attach(app: typer.Typer) -> None:
    app.command("retrain")(retrain)
