"""Move a rejected batch into quarantine without ever losing or half-moving it.

Same filesystem: one ``os.rename`` (atomic). Across filesystems: copy to a temporary name in the
quarantine folder, fsync, verify the sha256 against the original, rename into place, fsync the
folder, and only then remove the original. Quarantined batches are never deleted by Tailor.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

from registry.errors import AlreadyExistsError, IntegrityError

CHUNK = 1 << 20


def move_into(batch: Path, folder: Path) -> Path:
    """Move ``batch`` into ``folder`` keeping its name; the original disappears only once the copy is verified.

    Raises:
        AlreadyExistsError: ``folder`` already holds a file of that name.
        IntegrityError: the cross-filesystem copy did not match the original (the original is kept).
    """
    target = folder / batch.name
    if target.exists():
        raise AlreadyExistsError(f"quarantine target {target} exists already; nothing was moved")
    try:
        os.rename(batch, target)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        _copy_verify_remove(batch, target)
    _fsync_dir(folder)
    _fsync_dir(batch.parent)
    return target


def _copy_verify_remove(batch: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.partial")
    try:
        with batch.open("rb") as source, partial.open("wb") as copy:
            shutil.copyfileobj(source, copy, CHUNK)
            copy.flush()
            os.fsync(copy.fileno())
        if sha256_file(partial) != sha256_file(batch):
            raise IntegrityError(f"copy of {batch} into quarantine does not match the original; the original is kept")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    batch.unlink()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable: the directory entry itself must reach the disk."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
