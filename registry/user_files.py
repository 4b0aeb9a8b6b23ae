"""One check for every file a user names on the command line or in the environment."""

from __future__ import annotations

from pathlib import Path

from registry.errors import NotFoundError, TailorError


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
