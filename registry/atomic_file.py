"""Whole-file writes that a crash or a concurrent writer can never leave half done."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: Path, data: str | bytes, *, private: bool = False) -> Path:
    """Write ``data`` beside ``path`` under a name of its own, then rename it over ``path``.

    A reader sees the old file or the new one, never a mix; two processes writing the same path at
    once each rename a complete file (the last one wins) instead of interleaving. On failure the
    aside file is removed and ``path`` is untouched. ``private`` creates it readable by the owner only
    (credentials), otherwise the umask decides as for any new file.
    """
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    try:
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
    except OSError as err:  # name the file the caller asked for, not the aside name it never chose
        raise type(err)(err.errno, err.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(aside, path)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    return path
