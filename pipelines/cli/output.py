"""How every command prints: JSON for machines (``--json``), short text for people."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer

JSON = typer.Option(False, "--json", help="machine-readable output")


def to_jsonable(obj: Any) -> Any:
    """Records (dataclasses, pydantic models) and paths/dates → plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.repr}
    if hasattr(obj, "model_dump"):
        return to_jsonable(obj.model_dump(mode="json"))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    return obj


def emit(obj: Any, *, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON when asked, else ``text`` (or a key: value listing of ``obj``)."""
    if as_json:
        typer.echo(json.dumps(to_jsonable(obj), indent=2, sort_keys=True))
        return
    if text is not None:
        typer.echo(text)
        return
    data = to_jsonable(obj)
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            typer.echo(f"{key:<{width}}  {value}")
    else:
        typer.echo(data)
