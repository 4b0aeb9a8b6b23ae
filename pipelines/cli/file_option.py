"""Options that name files: one to write (a path of the other kind is refused before anything runs),
and the policy file several commands read."""

from __future__ import annotations

import os
from pathlib import Path

import typer

POLICY_HELP = "promotion policy file (default: the policy setting, else the packaged default: a checkout's policy.yaml)"
ENCODING = typer.Option(
    None,
    "--encoding",
    metavar="CODEC",
    help="text encoding of a CSV/JSONL batch, e.g. cp932 (Japanese Excel's CSV) or euc_jp; default UTF-8",
)


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


def output_folder(raw: str) -> Path:
    """Parser of a ``--report-dir DIR`` option.

    Checked before the command acts: ``tailor validate`` would otherwise track and push the batch
    and only then fail to write its report.

    Raises:
        typer.BadParameter: ``raw``, or a folder on its way, is an existing file.
    """
    path = Path(raw)
    for part in [path, *path.parents]:
        if part.exists() and not part.is_dir():
            raise typer.BadParameter(f"{part} is a file, not a folder; give a folder for the report")
    return path
