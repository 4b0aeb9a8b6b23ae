"""The working folders of retrain runs: where a run works, and how many are kept."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pipelines.records import utcnow

_STAMP = "%Y%m%dT%H%M%S%fZ"
# Only folders a run named: anything else under runs/<name>/ is the user's and is left alone.
_RUN_FOLDER = re.compile(r"\d{8}T\d{12}Z")


def new_run_folder(parent: Path) -> Path:
    """A folder name under ``parent`` for a run starting now (UTC time, so names sort by age)."""
    return parent / utcnow().strftime(_STAMP)


def prune_run_folders(parent: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` run folders under ``parent``; returns the deleted ones.

    Everything a run leaves that matters is elsewhere by the time it ends: the candidate and its
    evidence in the registry, a rejected batch and its report in quarantine. Kept for ever, the
    folders of an hourly schedule fill the disk with copies of every batch (``reference.csv``).
    """
    if not parent.is_dir():
        return []
    runs = sorted(p for p in parent.iterdir() if _RUN_FOLDER.fullmatch(p.name) and p.is_dir() and not p.is_symlink())
    old = runs[: max(len(runs) - keep, 0)]
    for folder in old:
        shutil.rmtree(folder)
    return old
