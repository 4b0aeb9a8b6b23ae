"""`tailor evaluate`: every check on a candidate adapter (quality vs production, drift, bias, cost,
operating load), then the gate under policy.yaml. Exit 1 when the gate fails, listing every failure."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from pipelines.cli.file_option import ENCODING, POLICY_HELP
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.cli.version_ref import split_ref
from registry.errors import ConfigError, NotFoundError

NONE = "none"


def evaluate(
    adapter: str = typer.Option(..., "--adapter", help="adapter folder, or NAME:VERSION from the registry"),
    data: Path = typer.Option(..., "--data", help="labeled holdout (CSV, JSONL or Parquet)"),
    against: str | None = typer.Option(
        None,
        "--against",
        help="what to compare with: an alias of NAME (production), NAME:VERSION, NAME:ALIAS, a folder, or 'none'; "
        "default: NAME's production when NAME is known (--name, or NAME:VERSION)",
    ),
    name: str | None = typer.Option(
        None, "--name", help="registry name of a folder candidate (to find its production)"
    ),
    policy_file: Path | None = typer.Option(None, "--policy", help=POLICY_HELP),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="where gate_decision.json and reports/ go (default: the adapter folder; for NAME:VERSION "
        "<home>/evaluations/NAME-VERSION, since a registered version never changes)",
    ),
    encoding: str | None = ENCODING,
    as_json: bool = JSON,
) -> None:
    """Run every check on an adapter and decide the gate. Exit 1 when the gate fails."""
    from pipelines.batches.read import read_batch
    from pipelines.evaluation.checks.suite import evaluate as run_checks
    from pipelines.evaluation.gate import describe
    from pipelines.evaluation.holdout_explanations import ExplainBudget
    from registry.adapter_folder import GATE_DECISION_FILE

    # The policy and the holdout first: a malformed policy is refused before any model is loaded.
    ctx = state.context()
    settings = ctx.settings
    policy = ctx.policy_or(policy_file)
    holdout = read_batch(data, max_bytes=policy.data.max_file_bytes, encoding=encoding)
    with tempfile.TemporaryDirectory(prefix="tailor-evaluate-") as tmp:
        adapter_dir, adapter_ref, name, default_out = _candidate(adapter, name, Path(tmp) / "candidate", settings.home)
        production_dir, production_ref, note = _production(against, name, Path(tmp) / "production")
        out_dir = out or default_out
        decision = run_checks(
            adapter_dir,
            holdout,
            policy,
            base_model_dir=settings.base_model_dir,
            base_model_id=settings.model_id_of(None),
            cache_dir=settings.home,
            production_dir=production_dir,
            production_ref=production_ref,
            adapter_ref=adapter_ref,
            out_dir=out_dir,
            explain_budget=ExplainBudget.of(settings),
        )
    where = f"gate decision and evidence written to {out_dir} ({GATE_DECISION_FILE}, reports/)"
    quality_details = next((c.details for c in decision.checks if c.name == "quality"), {})
    emit(
        {
            **decision.model_dump(mode="json"),
            "baselines": quality_details.get("baselines", {}),
            "out_dir": str(out_dir),
            "note": note,
        },
        as_json=as_json,
        text="\n".join(line for line in (describe(decision), note, where) if line),
    )
    if not decision.passed:
        raise typer.Exit(1)


def _candidate(adapter: str, name: str | None, download_to: Path, home: Path) -> tuple[Path, str, str | None, Path]:
    """The candidate's folder, how to name it, its registry name (if known) and the default --out."""
    if Path(adapter).is_dir():
        return Path(adapter), str(adapter), name, Path(adapter)
    ref = split_ref(adapter)
    if ref is None:
        raise NotFoundError(
            f"--adapter {adapter!r} is neither an adapter folder nor NAME:VERSION (NAME@VERSION works too)"
        )
    manifest = state.context().registry().download(ref.name, ref.ref, download_to)
    return (
        download_to,
        f"{manifest.name}:{manifest.version}",
        manifest.name,
        home / "evaluations" / (f"{manifest.name}-{manifest.version}"),
    )


def _production(against: str | None, name: str | None, download_to: Path) -> tuple[Path | None, str | None, str]:
    """The folder to compare with, how to name it, and a note for the reader."""
    from pipelines.usecases.production import fetch_for_comparison

    if against is not None and against.lower() == NONE:
        return None, None, "not compared with production (--against none)"
    if against is not None and Path(against).is_dir():
        return Path(against), str(against), f"compared with the folder {against}"
    split = split_ref(against) if against is not None else None
    if split is not None:
        name, ref = split.name, split.ref
    elif name is None:
        if against is not None:
            raise ConfigError(
                f"--against {against} needs the adapter's registry name: give --name NAME "
                "(or --against NAME:VERSION, a folder, or none)"
            )
        return None, None, "no registry name (--name): not compared with production; quality judged on the floor only"
    else:
        ref = against or "production"
    comparison = fetch_for_comparison(state.context().registry(), name, ref, download_to)
    return comparison.folder, comparison.ref, comparison.note


def attach(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
