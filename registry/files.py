"""Files: whole-file writes no crash leaves half done, one check for every file a user names, and
the two formats read without trusting them (a JSON object, a safetensors header)."""

from __future__ import annotations

import json
import os
import secrets
import stat
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from registry.errors import ConfigError, NotFoundError, TailorError

# A safetensors header is a small JSON document; a larger "length" means the file is something else.
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024


@contextmanager
def errors_named(path: Path) -> Iterator[None]:
    """Re-raise an OSError as naming ``path``: the place the caller asked for, not an aside name it never chose."""
    try:
        yield
    except OSError as err:
        raise type(err)(err.errno, err.strerror, str(path)) from None


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
    with errors_named(path):
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
    try:
        with errors_named(path):  # a full disk fails the write or the close, and must name the file too
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
            os.replace(aside, path)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    return path


def require_file(path: Path, what: str, error: type[TailorError] = NotFoundError, hint: str = "") -> Path:
    """``path`` if it is a regular file.

    A folder or a device must be refused by name before it is opened: reading ``/dev/zero`` never
    ends, and "does not exist" would send the user looking for a file that is there.

    Raises:
        ``error``: the path does not exist (then ``hint`` follows), is a folder, or is a device,
            pipe or socket.
    """
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise error(f"{what} {path} does not exist{hint}")
    kind = "a folder" if path.is_dir() else "a device, pipe or socket"
    raise error(f"{what} {path} is {kind}, not a file")


def require_private_file(path: Path, what: str, holds: str, hint: str = "") -> Path:
    """``path`` if it is a regular file only its owner may read or write.

    Raises:
        ConfigError: missing (then ``hint`` follows), not a file, or open to the group or to others,
            naming what it ``holds`` and the fix.
    """
    path = require_file(path, f"{what}:", ConfigError, hint)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what}: {path} may be read by other users (mode {stat.S_IMODE(mode):o}): it holds {holds}; "
            f"`chmod 600 {path}`, and replace those keys if others could read them"
        )
    return path


def safetensors_header_problem(path: Path) -> str | None:
    """Why ``path`` is not a safetensors file (its header, read without loading any tensor), or None."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return "too short"
        (length,) = struct.unpack("<Q", head)
        if length > min(size - 8, MAX_SAFETENSORS_HEADER):
            return "bad header length"
        try:
            header = json.loads(fh.read(length))
        except (ValueError, UnicodeDecodeError):
            return "header is not JSON"
    return None if isinstance(header, dict) else "header is not a JSON object"


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in a UTF-8 file.

    Raises:
        ValueError: why it is not one, worded to follow the file's name.
    """
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"is not readable JSON ({err})") from None
    if not isinstance(value, dict):
        raise ValueError(f"must hold a JSON object, not {type(value).__name__}")
    return value
