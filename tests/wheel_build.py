"""Build the checkout's wheel as a user would (`pip wheel`), for the tests of what an installed Tailor holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_wheel(dist: Path) -> Path:
    """The wheel of the checkout, built into ``dist`` without its dependencies."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(dist), "."],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = Path(dist).glob("tailor-*.whl")
    return wheel
