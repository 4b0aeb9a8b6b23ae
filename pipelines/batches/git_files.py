"""Whether git tracks a file: such a file belongs to the checkout and must never be moved away."""

from __future__ import annotations

import subprocess
from pathlib import Path


def tracked_by_git(path: Path) -> bool:
    """True when the git repository holding ``path`` tracks it (committed or staged).

    No git installed, or no repository around the file, means not tracked.
    """
    path = Path(path).resolve()
    try:
        found = subprocess.run(
            ["git", "ls-files", "--error-unmatch", "--", path.name], cwd=path.parent, capture_output=True
        )
    except FileNotFoundError:
        return False
    return found.returncode == 0
