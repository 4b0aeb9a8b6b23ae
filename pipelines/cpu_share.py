"""Training as a background job: a lower CPU priority and a thread cap, so a server on the same host keeps its p95.

Linux keeps a nice value per thread and new threads inherit their creator's: every thread of the
process is lowered, so torch's thread pool, started before or after, runs at the training priority.
An unprivileged process cannot raise its priority back, so a process that trained stays lowered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TASKS = Path("/proc/self/task")


def training_threads(setting: int, cpus: int | None = None) -> int:
    """``setting`` threads, or for 0 every core but one (at least one): the last core stays the server's."""
    if setting > 0:
        return setting
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus - 1)


def lower_priority(niceness: int) -> int:
    """Raise every thread's nice value of this process to at least ``niceness``; return the process's niceness now.

    Raises:
        OSError: the OS refused (a sandbox without setpriority).
    """
    tids = [int(t.name) for t in TASKS.iterdir()] if TASKS.is_dir() else [0]
    for tid in tids:
        try:
            current = os.getpriority(os.PRIO_PROCESS, tid)
        except ProcessLookupError:  # a thread that ended while we looked
            continue
        if current < niceness:
            try:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
            except ProcessLookupError:
                continue
    return os.getpriority(os.PRIO_PROCESS, 0)


@contextmanager
def training_share(niceness: int, threads_setting: int) -> Iterator[tuple[int, int]]:
    """Within: torch capped at :func:`training_threads` threads (restored after), the process lowered to
    ``niceness`` (for good: see the module's note). Yields (niceness, threads) as set."""
    import torch

    before = torch.get_num_threads()
    threads = training_threads(threads_setting)
    torch.set_num_threads(threads)
    try:
        yield lower_priority(niceness), threads
    finally:
        torch.set_num_threads(before)
