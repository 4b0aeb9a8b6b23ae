"""`tailor validate BATCH`: judge an incoming labeled batch, then quarantine it or track it with DVC."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.batches.report import locations
from pipelines.cli.file_option import ENCODING, POLICY_HELP, output_folder
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.records import ValidationReport
from registry.errors import NotFoundError


def validate(
    batch: Path = typer.Argument(..., help="CSV, JSONL or Parquet file with columns text, label[, group, id]"),
    labels: Path | None = typer.Option(None, "--labels", help="allowed labels, one per line"),
    adapter: str | None = typer.Option(
        None, "--adapter", help="take the allowed labels from this adapter's production version"
    ),
    holdout: Path | None = typer.Option(None, "--holdout", help="holdout file: batch texts must not leak into it"),
    no_noise_audit: bool = typer.Option(
        False, "--no-noise-audit", help="skip the label-noise audit (no base model needed)"
    ),
    report_dir: Path | None = typer.Option(
        None,
        "--report-dir",
        parser=output_folder,
        metavar="DIR",
        help="where an accepted batch's report goes; default data/reports/<time>-<name>/",
    ),
    no_track: bool = typer.Option(
        False, "--no-track", help="do not dvc add/push an accepted batch (its md5 is still recorded)"
    ),
    policy_file: Path | None = typer.Option(None, "--policy", help=POLICY_HELP),
    encoding: str | None = ENCODING,
    base_model: str | None = typer.Option(
        None,
        "--base-model",
        metavar="DIR|NAME",
        help="base model whose tokenizer must read the batch, also used by the noise "
        "audit (default: the base_model setting)",
    ),
    as_json: bool = JSON,
) -> None:
    """Validate BATCH (expectation suite + label-noise audit). Exit 1 and quarantine it when rejected.

    A rejected batch in data/incoming/ is moved into quarantine; from anywhere else it is copied and stays put.
    """
    from pipelines.batches.route import validate_and_route
    from registry.files import require_file

    if labels is not None and adapter is not None:
        raise typer.BadParameter("give --labels or --adapter, not both")
    # Before the store's settings: with no store set up, a folder given as BATCH was reported as
    # missing store credentials.
    require_file(batch, "batch file")
    settings = state.settings()
    report = validate_and_route(
        batch,
        state.context().policy_or(policy_file),
        data_dir=settings.data_dir,
        labels_file=labels,
        labels=_production_labels(adapter) if adapter else None,
        holdout=holdout,
        base_model=settings.base_folder(base_model),
        noise_audit=not no_noise_audit,
        report_dir=report_dir,
        track=not no_track,
        store=None if no_track else settings.store(),
        encoding=encoding,
    )
    emit(report, as_json=as_json, text=summary(report))
    if not report.accepted:
        raise typer.Exit(1)


def _production_labels(adapter: str) -> list[str]:
    manifest = state.context().registry().resolve(adapter)
    if manifest is None:
        raise NotFoundError(f"adapter {adapter} has no production version to take labels from; pass --labels FILE")
    return list(manifest.labels)


def summary(report: ValidationReport) -> str:
    """The report in a few lines: verdict, each failure with its count and first example, where things went."""
    name = Path(report.batch).name
    if report.accepted:
        lines = [f"ACCEPTED {name} ({report.rows} rows): all {len(report.checked)} checks passed"]
    else:
        lines = [f"REJECTED {name} ({report.rows} rows): {len(report.failures)} of {len(report.checked)} checks failed"]
    for failure in report.failures:
        example = f" — {failure.examples[0]}" if failure.examples else ""
        lines.append(f"  ✗ {failure.name}: {failure.count}{example}")
    if report.coverage is not None:
        c = report.coverage
        lines.append(
            f"base model coverage: {c.unknown_token_share:.1%} unknown tokens, {c.chars_per_token:.2f} "
            f"characters per token ({c.base_model})"
        )
    if report.noise is not None:
        rate = "n/a" if report.noise.estimated_rate is None else f"{report.noise.estimated_rate:.3f}"
        lines.append(
            f"label noise: estimated {rate} (limit {report.noise.max_rate}), {report.noise.flagged} suspected "
            f"mislabels → {report.noise.review_file}"
        )
    lines += [f"note: {note}" for note in [*report.notes, *(report.noise.notes if report.noise else [])]]
    lines += [f"{what}: {where}" for what, where in locations(report)]
    lines.append(f"report: {report.report_markdown}")
    return "\n".join(lines)


def attach(app: typer.Typer) -> None:
    app.command("validate")(validate)
