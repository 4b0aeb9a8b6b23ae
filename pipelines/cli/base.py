"""`tailor base add|list`: base models as registered artifacts, fetched by sha256 wherever they are used."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.cli.table import table

app = typer.Typer(help="Register base models (safetensors only, no remote code) and list them.", no_args_is_help=True)


@app.command("add")
def add(
    folder: Path = typer.Argument(..., help="local Hugging Face encoder folder"),
    name: str = typer.Option(..., "--name", help="the name base_model / --base-model will use"),
    license: str = typer.Option("", "--license", help="the model's license, e.g. apache-2.0"),
    languages: str = typer.Option("", "--languages", help="comma-separated language tags, e.g. ja,en"),
    source: str = typer.Option("", "--source", help="where it came from, an http(s) URL"),
    as_json: bool = JSON,
) -> None:
    """Check FOLDER loads safely, then upload it content-addressed and create-only as NAME, with an audit event."""
    from pipelines.base_names import model_id_for
    from pipelines.urls import http_url
    from registry.base_manifest import folder_files, parse_languages, validate_base_name
    from registry.base_models import BaseModels
    from registry.errors import ConfigError, RefusedError
    from serving.encoder import check_model_dir, load_encoder, load_tokenizer

    validate_base_name(name)
    tags = parse_languages(languages)
    if source:
        try:
            http_url(source)
        except ValueError as err:
            raise RefusedError(f"--source {err}") from None
    check_model_dir(folder)
    folder_files(folder)  # pickle or Python files are refused before anything is loaded
    load_tokenizer(folder)
    load_encoder(folder)
    try:
        model_id = model_id_for(folder)
    except ConfigError:
        model_id = name  # no hub id recorded: the registered name is the label manifests carry
    manifest = BaseModels(state.context().registry()).add(
        folder, name, model_id=model_id, license=license, languages=tags, source=source
    )
    emit(
        manifest,
        as_json=as_json,
        text=f"base model {name} ({manifest.model_id}): {len(manifest.files)} files, "
        f"weights {manifest.fingerprint.weights_sha256[:12]}, by {manifest.created_by} at {manifest.created_at}",
    )


@app.command("list")
def list_(as_json: bool = JSON) -> None:
    """Every registered base model, each record proven against its audit event."""
    from registry.base_models import BaseModels

    bases = BaseModels(state.context().registry()).list()
    listed = table(
        ("name", "model id", "languages", "licence", "weights sha256", "by", "created (UTC)"),
        (
            (
                m.name,
                m.model_id,
                ",".join(m.languages) or None,
                m.license,
                m.fingerprint.weights_sha256[:12],
                m.created_by,
                m.created_at,
            )
            for m in bases
        ),
    )
    emit(
        bases,
        as_json=as_json,
        text=listed if bases else "no base models registered (`tailor base add DIR --name NAME`)",
    )


def attach(parent: typer.Typer) -> None:
    parent.add_typer(app, name="base")
