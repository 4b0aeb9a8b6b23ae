"""The reference pages of the docs site, generated from the code at build time.

Every import of Tailor's own code that the docs need is in `_sources()`, so a module that moves is
fixed here once. The mkdocs hook (`on_files`) adds the pages to the build without writing them into
docs/, so there is no committed copy to drift; tests/integration/project/test_docs_site.py checks that the
pages cover what the code knows and that the hand-written pages name only commands and settings that exist.
"""

from __future__ import annotations

import json
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # build this checkout's code, whatever the venv's editable install points at


@dataclass(frozen=True)
class Sources:
    """What the reference is generated from."""

    cli: Any  # the Typer app
    settings: type  # the pydantic Settings
    policy: type  # the pydantic Policy
    policy_file: Path  # the shipped policy, whose comments explain each key
    params: type  # the pydantic TrainParams
    params_file: Path
    openapi: dict
    file_formats: list[tuple[str, str, dict]]  # (file name, record name, JSON schema)


def _sources() -> Sources:
    # The one place that knows where things live.
    from pydantic import TypeAdapter

    from pipelines.cli.main import app
    from pipelines.policy import DEFAULT_POLICY, Policy
    from pipelines.records import GateDecision, TrainResult, ValidationReport
    from pipelines.settings import Settings
    from pipelines.training.params import TrainParams
    from registry.audit.events import AuditEvent
    from registry.manifest import Manifest
    from serving.app import create_app

    # The schema needs no adapters: a follower serving none is enough to build the routes.
    openapi = create_app(types.SimpleNamespace(names=[])).openapi()
    formats = [
        ("validation.json", "ValidationReport", ValidationReport.model_json_schema()),
        ("train_result.json", "TrainResult", TrainResult.model_json_schema()),
        ("gate_decision.json", "GateDecision", GateDecision.model_json_schema()),
        ("manifest.json", "Manifest", TypeAdapter(Manifest).json_schema()),
        ("audit/NAME/SEQ.json", "AuditEvent", TypeAdapter(AuditEvent).json_schema()),
    ]
    return Sources(app, Settings, Policy, DEFAULT_POLICY, TrainParams, ROOT / "params.yaml", openapi, formats)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(field) -> str:
    if field.default_factory is not None:
        return f"`{field.default_factory()!r}`"
    if field.is_required():
        return "required"
    value = field.default
    return "empty" if value in (None, "") else f"`{value}`"


def _type(prop: dict) -> str:
    """A JSON-schema property in words: `int`, `path or empty`, one of `a` | `b`."""
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        kinds = [_type(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(kinds) + (" or empty" if any(p.get("type") == "null" for p in prop["anyOf"]) else "")
    kind = prop.get("type", "any")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}))}"
    if kind == "string" and prop.get("format") == "path":
        return "path"
    return {"integer": "int", "number": "float", "string": "str", "boolean": "bool"}.get(kind, kind)


def _bounds(field) -> str:
    parts = []
    for meta in field.metadata:
        for name, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "length ≥")):
            if getattr(meta, name, None) is not None:
                parts.append(f"{sign} {getattr(meta, name)}")
    return ", ".join(parts)


def click_command(app):
    import typer.main

    return typer.main.get_command(app)


def cli_page(src: Sources) -> str:
    import click
    import typer.cli

    command = click_command(src.cli)
    body = typer.cli.get_docs_for_click(obj=command, ctx=click.Context(command), name="tailor")
    body = re.sub(r"^(#+) ", r"#\1 ", body, flags=re.M)  # under this page's own title
    return (
        "# CLI reference\n\nGenerated from the `tailor` command itself; `tailor COMMAND --help` prints the same.\n"
        "Exit codes: [exit codes](exit-codes.md).\n\n" + body
    )


def settings_page(src: Sources) -> str:
    lines = [
        "# Settings",
        "",
        "Generated from the settings model. Each key is a `tailor.toml` key (in the working folder, or the file",
        "named by `TAILOR_CONFIG`) and an environment variable `TAILOR_<KEY>`, which wins. A bad value is refused",
        "with the key and the reason (exit 2). How to use them: [configure Tailor](../how-to/configure.md).",
        "",
        "| key | environment | type | default | limits | meaning |",
        "|---|---|---|---|---|---|",
    ]
    props = src.settings.model_json_schema()["properties"]
    for name, field in src.settings.model_fields.items():
        lines.append(
            f"| `{name}` | `TAILOR_{name.upper()}` | {_type(props[name])} | {_cell(_default(field))} | {_bounds(field)} "
            f"| {_cell(field.description or '')} |"
        )
    return "\n".join(lines) + "\n"


def yaml_comments(path: Path) -> dict[str, str]:
    """`section.key` → the comments written above it, beside it and under it in a two-level YAML file."""
    comments: dict[str, list[str]] = {}
    section, pending, last = "", [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if not stripped:
            pending, last = [], None
            continue
        if stripped.startswith("#"):
            text = stripped.lstrip("#").strip()
            if text.startswith("---") or not text:
                continue
            if last is not None and indent > 2:  # a trailing comment carried over to the next lines
                comments[last].append(text)
            elif indent >= 2:
                pending.append(text)
            continue
        key = stripped.split(":", 1)[0]
        if indent == 0:
            section, pending, last = key, [], None
            continue
        last = f"{section}.{key}"
        trailing = line.split(" #", 1)[1].strip() if " #" in line else ""
        comments[last] = pending + ([trailing] if trailing else [])
        pending = []
    return {key: " ".join(text) for key, text in comments.items()}


def _model_table(model: type, values: dict, comments: dict[str, str], prefix: str) -> list[str]:
    lines = ["| key | type | default | limits | shipped value | why |", "|---|---|---|---|---|---|"]
    props = model.model_json_schema()["properties"]
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        shipped = values.get(name, "")
        why = comments.get(f"{prefix}.{name}", "") or field.description or ""
        lines.append(
            f"| `{prefix}.{name}` | {_type(props[name])} | {_cell(_default(field))} | {_bounds(field)} "
            f"| {_cell(json.dumps(shipped) if shipped != '' else '')} | {_cell(why)} |"
        )
    return lines


def policy_keys(src: Sources) -> list[str]:
    keys = []
    for section, field in src.policy.model_fields.items():
        model = field.annotation
        if isinstance(model, type) and hasattr(model, "model_fields"):
            keys += [f"{section}.{name}" for name, f in model.model_fields.items() if not f.exclude]
    return keys


def policy_page(src: Sources) -> str:
    import yaml

    shipped = yaml.safe_load(src.policy_file.read_text(encoding="utf-8"))
    comments = yaml_comments(src.policy_file)
    lines = [
        "# Promotion policy",
        "",
        "Generated from the policy model and the comments of the shipped `policy.yaml`. Every key is optional",
        "except `version`; an unknown key, a wrong type or a value out of range is refused, naming the key.",
        "The `max_*` limits hold with `<=`, the `min_*` limits with `>=`. How the gate uses them:",
        "[evaluate and gate](../how-to/evaluate.md).",
        "",
        f"Shipped policy version: `{shipped.get('version')}`.",
    ]
    for section, field in src.policy.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and hasattr(model, "model_fields")):
            continue
        lines += ["", f"## `{section}`", ""]
        lines += _model_table(model, shipped.get(section) or {}, comments, section)
    return "\n".join(lines) + "\n"


def params_page(src: Sources) -> str:
    import yaml

    shipped = (yaml.safe_load(src.params_file.read_text(encoding="utf-8")) or {}).get("train") or {}
    lines = [
        "# Training parameters",
        "",
        "Generated from the training-parameter model and the comments of the shipped `params.yaml`",
        "(section `train:`, tracked by DVC). `tailor train --params FILE` reads another file.",
        "",
    ]
    lines += _model_table(src.params, shipped, yaml_comments(src.params_file), "train")
    return "\n".join(lines) + "\n"


def _json_block(value: Any) -> list[str]:
    return ["```json", json.dumps(value, indent=2, ensure_ascii=False), "```"]


def http_page(src: Sources) -> str:
    spec = src.openapi
    lines = [
        "# HTTP API",
        "",
        f"Generated from the predictor's OpenAPI description ({spec['info']['title']}, OpenAPI {spec['openapi']}).",
        "A running server serves the same document at `/openapi.json`; it has no `/docs` page, which would load",
        'its scripts from a CDN. Every 4xx body is `{"error": …, "problems": […]}`. `/metrics` (Prometheus',
        "text) is outside the schema. Running it: [serve](../how-to/serve.md).",
    ]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            lines += ["", f"## `{method.upper()} {path}`", "", op.get("description") or op.get("summary", ""), ""]
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body:
                lines.append(f"Request body: `{body.get('$ref', '').rsplit('/', 1)[-1]}`.")
                lines.append("")
            lines += ["| status | meaning | body |", "|---|---|---|"]
            for status, response in op.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                name = schema.get("$ref", "").rsplit("/", 1)[-1]
                lines.append(f"| {status} | {_cell(response.get('description', ''))} | {f'`{name}`' if name else ''} |")
    lines += ["", "## Schemas"]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += ["", f"### `{name}`", ""] + _json_block(schema)
    return "\n".join(lines) + "\n"


def file_formats_page(src: Sources) -> str:
    lines = [
        "# File formats",
        "",
        "The JSON files Tailor writes, as JSON Schemas generated from the records that write and read them.",
        "Batch files (CSV, JSONL or Parquet with the columns `text`, `label` and optionally `group` and `id`)",
        "are described in [validate a batch](../how-to/validate.md).",
    ]
    for filename, record, schema in src.file_formats:
        lines += ["", f"## `{filename}` ({record})", ""] + _json_block(schema)
    return "\n".join(lines) + "\n"


PAGES: dict[str, Callable[[Sources], str]] = {
    "reference/cli.md": cli_page,
    "reference/settings.md": settings_page,
    "reference/policy.md": policy_page,
    "reference/params.md": params_page,
    "reference/http-api.md": http_page,
    "reference/file-formats.md": file_formats_page,
}


COPIED = {"benchmarks.md": "bench/RESULTS.md", "changelog.md": "CHANGELOG.md"}


def generate() -> dict[str, str]:
    """Every generated page: path under docs/ → Markdown."""
    src = _sources()
    return {path: page(src) for path, page in PAGES.items()}


def on_files(files, config):
    """mkdocs hook: add the generated pages to the build."""
    from mkdocs.structure.files import File

    for path, text in generate().items():
        files.append(File.generated(config, path, content=text))
    # Kept at the repository's top level, where people look for them; shown in the site as they are.
    for path, source in COPIED.items():
        files.append(File.generated(config, path, content=(ROOT / source).read_text(encoding="utf-8")))
    return files
