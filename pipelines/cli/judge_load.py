"""`tailor judge-load NAME VERSION`: measure a version's operating load again when the gate could not judge it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from pipelines.cli.file_option import POLICY_HELP
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.cli.version_ref import VERSION, parse_ref


def judge_load(
    name: str = typer.Argument(..., help="registered name"),
    version: str | None = VERSION,
    policy_file: Path | None = typer.Option(None, "--policy", help=POLICY_HELP),
    as_json: bool = JSON,
) -> None:
    """Judge VERSION's load again (machine too busy the first time) and record the verdict as a new audit event.

    Exit 0 when the gate now passes, 1 when it fails or the machine is still too busy.
    """
    from pipelines.evaluation import gate
    from pipelines.evaluation.judge_load import judge_load as judge

    ref = parse_ref(name, version)
    ctx = state.context()
    settings = ctx.settings
    policy = ctx.policy_or(policy_file)
    name, version = ref.resolved(ctx.registry)
    with tempfile.TemporaryDirectory(prefix="tailor-judge-load-") as tmp:
        decision = judge(ctx.registry(), name, version, policy, base_model_dir=settings.base_model_dir, work=Path(tmp))
    emit(decision, as_json=as_json, text=gate.describe(decision) + f"\nrecorded as a judge event of {name} {version}")
    if not decision.passed:
        raise typer.Exit(1)


def attach(app: typer.Typer) -> None:
    app.command("judge-load")(judge_load)
