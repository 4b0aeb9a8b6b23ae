"""Rows as a table for a person (`tailor list`, `user list`, `base list`); ``--json`` output is unaffected.
Rendered without colour, so a pipe or a log file gets the same plain text a terminal shows."""

from __future__ import annotations

import io
import shutil
import sys
from typing import Iterable, Sequence

# Wider than any terminal: a pipe or a file gets whole rows, never cells wrapped to 80 columns.
_PIPE_WIDTH = 10_000


def table(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """The rows under their column headings; cells are plain text (a ``[`` in a reason is not rich markup)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    grid = Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for row in rows:
        grid.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else _PIPE_WIDTH
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, highlight=False, emoji=False).print(grid)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())
