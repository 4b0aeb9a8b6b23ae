"""Training as a background job: a lower CPU priority and a thread cap, so a server on the same host keeps its p95.

Linux keeps a nice value per thread and new threads inherit their creator's: every thread of the
process is lowered, so torch's thread pool, started before or after, runs at the training priority.
An unprivileged process cannot raise its priority back, so a process that trained stays lowered:
a process with more to do after training (the retrain flow evaluates, `tailor watch` takes the next
batch) trains in a child (:func:`run_in_share`) and keeps its own priority.

Children are forked by a fork server: a single-threaded process, so a child copies none of the
flow's threads and locks (a plain fork would), and one that has imported the training modules once
(:func:`start_workers`, called early so that happens while the flow validates), so no child waits
for torch to import, where a fresh interpreter per child did each time.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import forkserver
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TASKS = Path("/proc/self/task")


def training_threads(setting: int, cpus: int | None = None) -> int:
    """``setting`` threads, or for 0 every core but one (at least one): the last core stays the server's."""
    if setting > 0:
        return setting
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus - 1)


def lower_priority(niceness: int) -> int:
    """Raise every thread's nice value of this process to at least ``niceness``; return the process's niceness now.

    Where the OS refuses (a sandbox or container without setpriority) training goes on at the priority
    it has, with a warning: a slower server beats no adapter.
    """
    tids = [int(t.name) for t in TASKS.iterdir()] if TASKS.is_dir() else [0]
    for tid in tids:
        try:
            current = os.getpriority(os.PRIO_PROCESS, tid)
            if current < niceness:
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
        except ProcessLookupError:  # a thread that ended while we looked
            continue
        except OSError as err:
            log.warning("training keeps its priority: the OS refused nice %d (%s)", niceness, err)
            break
    return os.getpriority(os.PRIO_PROCESS, 0)


@contextmanager
def training_share(niceness: int, threads_setting: int) -> Iterator[tuple[int, int]]:
    """Within: torch and the BLAS numpy and scikit-learn call (the noise filter's and the head's logistic
    regressions) capped at :func:`training_threads` threads (restored after), the process lowered to
    ``niceness`` (for good: see the module's note). Yields (niceness, threads) as set."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    threads = training_threads(threads_setting)
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads, user_api="blas"):
            yield lower_priority(niceness), threads
    finally:
        torch.set_num_threads(before)


def start_workers(preload: list[str]) -> None:
    """Start the fork server that training children come from, importing ``preload`` (module names) in the
    background; nothing happens when it already runs. A module whose import raises anything but ImportError
    stops the server, and no child starts (``run_in_share`` says so): preload through a module that guards
    its imports (``pipelines.training.preload``)."""
    multiprocessing.set_forkserver_preload(preload)
    forkserver.ensure_running()


class TrainingProcessError(RuntimeError):
    """The training child process failed; the message is its error."""


def run_in_share(target: Callable[..., Any], *args: Any, niceness: int, threads_setting: int) -> None:
    """``target(*args)`` in a child process under :func:`training_share`; this process keeps its priority.

    ``target`` must be a module-level function; what it makes it writes to disk (an adapter folder).

    Raises:
        TrainingProcessError: ``target`` raised (its type and message), or the child died (its exit code).
    """
    context = multiprocessing.get_context("forkserver")
    receive, send = context.Pipe(duplex=False)
    # The fork server's environment is the one it started with (multiprocessing gives the child this
    # process's folder, not its environment): pass this process's, settings from TAILOR_* included. What
    # the server's preloaded modules read at import (huggingface_hub's HF_HUB_OFFLINE, HF_HOME) stays as it
    # was when the server started; bases load from local folders only (local_files_only), whatever it says.
    child = context.Process(
        target=_share_child,
        args=(send, dict(os.environ), target, args, niceness, threads_setting),
        name="tailor-train",
    )
    try:
        child.start()
    except (EOFError, OSError) as err:  # the fork server is gone: it died importing its preload, or was killed
        raise TrainingProcessError(
            f"no training process could be started: the fork server training children come from is not running "
            f"({type(err).__name__}: {err}); see the flow's log for why it stopped"
        ) from err
    send.close()
    try:
        message = receive.recv_bytes().decode() if receive.poll(None) else ""
    except EOFError:  # the child died before saying anything
        message = ""
    child.join()
    if child.exitcode != 0 or message:
        raise TrainingProcessError(message or f"the training process ended with exit code {child.exitcode}")


def _share_child(
    send: Any, environ: dict[str, str], target: Callable[..., Any], args: tuple, niceness: int, threads_setting: int
) -> None:
    try:
        os.environ.clear()
        os.environ.update(environ)
        with training_share(niceness, threads_setting):
            target(*args)
    except Exception as err:  # noqa: BLE001 - handed to the parent, which raises it there
        send.send_bytes(f"{type(err).__name__}: {err}".encode())
        raise SystemExit(1) from None
    finally:
        send.close()
