"""`tailor report NAME VERSION --out FILE.html`: the self-contained audit report of one version."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.file_option import output_file
from pipelines.cli.output import emit
from pipelines.cli.output import JSON
from pipelines.cli.state import state


def report(
    name: str = typer.Argument(..., help="adapter name"),
    version: str = typer.Argument(..., help="v1, v2, …"),
    out: Path = typer.Option(..., "--out", parser=output_file, metavar="FILE", help="HTML file to write"),
    force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
    as_json: bool = JSON,
) -> None:
    """Write a model card with every piece of evidence and the version's audit trail (opens offline)."""
    from registry.files import write_atomic
    from registry.errors import AlreadyExistsError
    from registry.report import gather, render

    if out.exists() and not force:
        raise AlreadyExistsError(f"--out {out} already exists; choose another path or pass --force to replace it")
    inputs = gather(state.context().registry(), name, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, render(inputs))
    emit({"name": name, "version": version, "out": out, "events": len(inputs.trail),
          "evidence": sorted(inputs.evidence)}, as_json=as_json, text=f"wrote {out}")  # fmt: skip


def attach(app: typer.Typer) -> None:
    app.command("report")(report)
