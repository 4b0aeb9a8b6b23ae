"""`tailor feedback`: corrected labels for recorded predictions, as a batch for the scheduled retrain."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.output import emit
from pipelines.cli.state import state


def feedback(
    file: Path = typer.Argument(..., help="CSV or JSONL with columns request_id, label[, index]"),
    name: str = typer.Option(..., "--name", help="adapter name whose recorded predictions are corrected"),
    incoming: Path | None = typer.Option(
        None,
        "--incoming",
        help="folder the batch is written to (default: <data_dir>/incoming, what `tailor schedule` watches)",
    ),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Turn corrected labels into a batch in the incoming folder: production's training rows plus the
    corrected predictions, with where they came from recorded beside it and in the store."""
    from pipelines.monitoring.feedback import make_batch

    ctx = state.context()
    settings, registry = ctx.settings, ctx.registry()
    made = make_batch(
        registry,
        name,
        file,
        incoming or settings.data_dir / "incoming",
        registry.settings.actor,
        max_bytes=ctx.policy.data.max_file_bytes,
    )
    emit(
        made,
        as_json=as_json,
        text=f"wrote {made.path}: {made.reference_rows} rows of {name} "
        f"{made.production_version} + {made.feedback_rows} corrected ({made.replaced_rows} replaced); "
        f"provenance in {made.provenance} and {made.record_key}",
    )


def attach(app: typer.Typer) -> None:
    app.command("feedback")(feedback)
