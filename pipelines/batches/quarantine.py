"""Move (or copy) a rejected batch into quarantine without ever losing or half-moving it.

Only a batch Tailor was given to take in (one in the incoming folder) is moved; a batch from
anywhere else is the user's file and is copied, leaving it where it was. Moving, on the same
filesystem: one ``os.rename`` (atomic). Across filesystems (and for every copy): copy to a temporary
name in the quarantine folder, fsync, verify the sha256 against the original, rename into place,
fsync the folder, and only then (for a move) remove the original. Quarantined batches are never deleted by Tailor. A move
that cannot finish leaves the batch where it was and nothing of it in quarantine.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from pathlib import Path

from registry.errors import AlreadyExistsError, IntegrityError, RefusedError

CHUNK = 1 << 20


class QuarantineError(RefusedError):
    """The batch cannot be moved into quarantine; it is left where it was."""


def move_into(batch: Path, folder: Path) -> Path:
    """Move ``batch`` into ``folder`` keeping its name; the original disappears only once the copy is verified.

    Raises:
        AlreadyExistsError: ``folder`` already holds a file of that name.
        IntegrityError: the cross-filesystem copy did not match the original (the original is kept).
        QuarantineError: the batch's folder does not let it go (read-only, immutable) or the move
            failed otherwise; the original is kept and no copy is left in ``folder``.
    """
    target = folder / batch.name
    if target.exists():
        raise AlreadyExistsError(f"quarantine target {target} exists already; nothing was moved")
    # Checked first: across filesystems the copy would be made, and only then would removing the original fail.
    if not os.access(batch.parent, os.W_OK | os.X_OK):
        raise QuarantineError(f"{batch.parent} does not let {batch.name} be removed (a read-only or immutable folder)")
    try:
        os.rename(batch, target)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise QuarantineError(f"cannot move {batch} to {target}: {err.strerror or err}") from None
        _copy_verify_remove(batch, target)
    _fsync_dir(folder)
    _fsync_dir(batch.parent)
    return target


def copy_into(batch: Path, folder: Path) -> Path:
    """Copy ``batch`` into ``folder`` keeping its name, verified by sha256; the original stays untouched.

    Raises:
        AlreadyExistsError: ``folder`` already holds a file of that name.
        IntegrityError: the copy did not match the original (no copy is left).
        QuarantineError: the copy failed (no copy is left).
    """
    target = folder / batch.name
    if target.exists():
        raise AlreadyExistsError(f"quarantine target {target} exists already; nothing was copied")
    _copy_verify(batch, target)
    _fsync_dir(folder)
    return target


def _copy_verify_remove(batch: Path, target: Path) -> None:
    _copy_verify(batch, target)
    try:
        batch.unlink()
    except OSError as err:
        target.unlink()
        raise QuarantineError(
            f"cannot remove {batch} after copying it ({err.strerror or err}); the copy was removed"
        ) from None


def _copy_verify(batch: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.partial")
    try:
        with batch.open("rb") as source, partial.open("wb") as copy:
            shutil.copyfileobj(source, copy, CHUNK)
            copy.flush()
            os.fsync(copy.fileno())
        if sha256_file(partial) != sha256_file(batch):
            raise IntegrityError(f"copy of {batch} into quarantine does not match the original; the original is kept")
        os.replace(partial, target)
    except OSError as err:
        raise QuarantineError(f"cannot copy {batch} to {target}: {err.strerror or err}") from None
    finally:
        partial.unlink(missing_ok=True)


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
