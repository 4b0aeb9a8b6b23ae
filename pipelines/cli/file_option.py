"""Options that name a file to write: a path that names a folder is refused before anything runs."""

from __future__ import annotations

import os
from pathlib import Path

import typer


def output_file(raw: str) -> Path:
    """Parser of a ``--out FILE`` option.

    The trailing separator has to be checked on the text as typed: ``Path("reports/")`` is
    ``reports``, and the command would write a file named ``reports`` where the user meant a folder.

    Raises:
        typer.BadParameter: ``raw`` ends with a separator or is an existing folder.
    """
    if raw.endswith(("/", os.sep)) or Path(raw).is_dir():
        raise typer.BadParameter(f"{raw} is a folder; give the path of the file to write inside it")
    return Path(raw)
