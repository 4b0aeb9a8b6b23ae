"""Progress of the long steps (embedding for the noise audit and drift, each check of an evaluation) for a
person watching a terminal.

Library code reports here unconditionally; nothing is shown unless the CLI turned it on for an interactive
command without ``--json``, so machine output, logs and tests stay quiet.
"""

from __future__ import annotations

import sys

_shown = False


def show(on: bool) -> None:
    """Turn progress on or off for this process (the CLI decides, once per command)."""
    global _shown
    _shown = on


def bar(total: int, desc: str):
    """A progress bar on stderr over ``total`` items, a no-op unless progress is shown; use as a context manager."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text", disable=not _shown, leave=False, file=sys.stderr)


def step(message: str) -> None:
    """One line on stderr saying which step starts."""
    if _shown:
        print(message, file=sys.stderr, flush=True)
