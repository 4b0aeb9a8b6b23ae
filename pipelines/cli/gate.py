"""`tailor gate`: judge recorded check results under a policy, the `gate` step of dvc.yaml.

`tailor evaluate` already decides the gate when it runs the checks; this command re-judges the same
measurements under the policy given now (`gate.decide` is pure), so a change to policy.yaml's
limits re-runs only this cheap stage, and the decision it records names that policy's sha256.
"""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.file_option import POLICY_HELP, output_file
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state


def gate(
    decision_file: Path = typer.Option(..., "--decision", help="gate_decision.json written by `tailor evaluate`"),
    policy_file: Path | None = typer.Option(None, "--policy", help=POLICY_HELP),
    out: Path | None = typer.Option(
        None, "--out", parser=output_file, metavar="FILE", help="where to write the new decision (JSON)"
    ),
    as_json: bool = JSON,
) -> None:
    """Re-judge the checks in DECISION under POLICY; exit 1 when the gate fails, listing every failure."""
    from pipelines.evaluation import gate as gate_step
    from pipelines.records import GateDecision
    from registry.files import require_file

    recorded = GateDecision.read_json(require_file(decision_file, "--decision:", hint=" (run `tailor evaluate` first)"))
    decision = gate_step.rejudge(state.context().policy_or(policy_file), recorded)
    if out is not None:
        decision.write_json(out)
    emit(decision, as_json=as_json, text=gate_step.describe(decision))
    if not decision.passed:
        raise typer.Exit(1)


def attach(app: typer.Typer) -> None:
    app.command("gate")(gate)
