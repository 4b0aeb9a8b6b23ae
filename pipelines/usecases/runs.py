"""The working folders of retrain runs: where a run works, what marks it finished, how many are kept."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.records import utcnow
from registry.files import write_atomic

_STAMP = "%Y%m%dT%H%M%S%fZ"
# Only folders a run named: anything else under runs/<name>/ is the user's and is left alone.
_RUN_FOLDER = re.compile(r"\d{8}T\d{12}Z")
_PRUNING = re.compile(r"\.(\d{8}T\d{12}Z)\.pruning")
FINISHED = "outcome.json"


@dataclass(frozen=True)
class Pruned:
    deleted: list[Path] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # a folder that could not be deleted, and why


def new_run_folder(parent: Path) -> Path:
    """A folder name under ``parent`` for a run starting now (UTC time, so names sort by age)."""
    return parent / utcnow().strftime(_STAMP)


def mark_finished(folder: Path, outcome_json: str) -> None:
    """Record a run's outcome in its folder: from then on the folder may be pruned."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / FINISHED, outcome_json)


def prune_run_folders(parent: Path, keep: int) -> Pruned:
    """Delete all but the newest ``keep`` finished run folders under ``parent``.

    A finished run's folder holds nothing that is not elsewhere too: the candidate and its evidence
    in the registry, a rejected batch and its report in quarantine. Kept for ever, the folders of an
    hourly schedule fill the disk with copies of every batch (``reference.csv``). A folder without
    an outcome belongs to a run still working, or to one that crashed and is kept for its owner to
    look into. Each folder is renamed aside before it is deleted, so two runs pruning at once never
    delete one folder twice, and one that cannot go is reported, not raised: pruning must never
    stop a retrain.
    """
    pruned = Pruned()
    if not parent.is_dir():
        return pruned
    finished = sorted(
        p for p in parent.iterdir() if _RUN_FOLDER.fullmatch(p.name) and not p.is_symlink() and (p / FINISHED).is_file()
    )
    aside = [p for p in parent.iterdir() if _PRUNING.fullmatch(p.name) and not p.is_symlink()]
    for folder in finished[: max(len(finished) - keep, 0)]:
        try:
            aside.append(folder.rename(folder.with_name(f".{folder.name}.pruning")))
        except FileNotFoundError:
            continue  # another run took it first
        except OSError as err:
            pruned.left.append(f"{folder}: {err.strerror or err}")
    for folder in aside:
        try:
            shutil.rmtree(folder)
            pruned.deleted.append(parent / _PRUNING.fullmatch(folder.name).group(1))
        except FileNotFoundError:
            continue
        except OSError as err:
            pruned.left.append(f"{folder}: {err.strerror or err}")
    return pruned
