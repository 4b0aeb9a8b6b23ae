"""`tailor report NAME VERSION --out FILE.html`: the self-contained audit report of one version."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from pipelines.cli.file_option import output_file
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.cli.version_ref import VERSION, parse_ref


def report(
    name: str = typer.Argument(..., help="adapter name"),
    version: str | None = VERSION,
    out: Path = typer.Option(..., "--out", parser=output_file, metavar="FILE", help="HTML file to write"),
    lang: Literal["ja", "en"] = typer.Option("ja", "--lang", help="language of the report"),
    tz: str = typer.Option("Asia/Tokyo", "--tz", help="time zone the times are shown in (stored in UTC)"),
    force: bool = typer.Option(False, "--force", help="replace --out if it exists"),
    as_json: bool = JSON,
) -> None:
    """Write the version's model card, evidence (charts as inline SVG) and audit trail as one HTML
    file that opens offline."""
    from pipelines.console.evidence import read_evidence
    from pipelines.console.i18n import zone
    from pipelines.console.render import render_report
    from registry.errors import AlreadyExistsError, ConfigError
    from registry.files import write_atomic

    if zone(tz).key != tz:
        raise ConfigError(f"--tz {tz!r} is not a time zone name (e.g. Asia/Tokyo, UTC)")
    if out.exists() and not force:
        raise AlreadyExistsError(f"--out {out} already exists; choose another path or pass --force to replace it")
    ref = parse_ref(name, version)
    registry = state.context().registry()
    name, version = ref.resolved(lambda: registry)
    evidence = read_evidence(registry, name, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, render_report(evidence, lang=lang, zone=tz))
    emit(
        {
            "name": name,
            "version": version,
            "out": out,
            "events": len(evidence.inputs.trail),
            "evidence": sorted(evidence.inputs.evidence),
        },
        as_json=as_json,
        text=f"wrote {out}",
    )


def attach(app: typer.Typer) -> None:
    app.command("report")(report)
