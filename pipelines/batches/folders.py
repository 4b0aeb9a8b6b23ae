"""A fresh folder per batch handled: ``<root>/<UTC time>-<batch name>/``, never shared or reused.

Quarantine and the reports of accepted batches both use it, so two batches of one name filed in
the same second never write into one folder.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from registry.errors import AlreadyExistsError

# Filesystems cap a name at 255 bytes; a longer batch name is cut well below that, leaving room for
# the time stamp and the -N suffix.
MAX_NAME_BYTES = 100
KEPT_BYTES = 64


def fresh_folder(root: Path, batch: Path, *, now: datetime | None = None) -> Path:
    """Create and return a new ``<root>/<UTC timestamp>-<batch name>[-N]/`` folder.

    A batch name over `MAX_NAME_BYTES` becomes its first `KEPT_BYTES`, a hash of the whole name
    (names that start alike stay apart) and its extension.
    """
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        suffix = f"-{attempt}" if attempt else ""
        folder = root / f"{stamp}-{short_name(batch.name)}{suffix}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise AlreadyExistsError(f"no free folder name for {batch.name} under {root}")


def short_name(name: str) -> str:
    """``name`` itself when short enough for a folder name, else a recognisable shortening of it."""
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) <= MAX_NAME_BYTES:
        return name
    extension = Path(name).suffix if len(Path(name).suffix) <= 16 else ""
    head = encoded[:KEPT_BYTES].decode("utf-8", "ignore")
    return f"{head}-{hashlib.sha256(encoded).hexdigest()[:8]}{extension}"
