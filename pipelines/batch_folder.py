"""A fresh folder per batch handled: ``<root>/<UTC time>-<batch name>/``, never shared or reused.

Quarantine and the reports of accepted batches both use it, so two batches of one name filed in
the same second never write into one folder.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from registry.errors import AlreadyExistsError


def fresh_folder(root: Path, batch: Path, *, now: datetime | None = None) -> Path:
    """Create and return a new ``<root>/<UTC timestamp>-<batch name>[-N]/`` folder."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        suffix = f"-{attempt}" if attempt else ""
        folder = root / f"{stamp}-{batch.name}{suffix}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise AlreadyExistsError(f"no free folder name for {batch.name} under {root}")
