"""The unit layer starts no process and opens no network connection.

A test that needs `tailor`, git, dvc, a server, a child process or a socket belongs in tests/integration:
these guards make such a test fail here, naming where it goes, instead of slowing `make test-unit` down
unnoticed. They wrap each unit test's setup and call (module fixtures included), not teardown, where the
session's shared SeaweedFS may be stopped after the last unit test of a full run.
"""

from __future__ import annotations

import multiprocessing.process
import multiprocessing.util
import os
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

MOVE = "move this test to tests/integration"


class NotAUnitTest(BaseException):
    """A unit test reached for a process or the network.

    Not an Exception: a library's `except Exception` fallback (Prefect's platform probe has one around `file`)
    would swallow it, and the test would pass having tried to start a process.
    """


def _no_process(*args, **_):
    raise NotAUnitTest(f"unit tests start no processes ({args[1:2]!r}): {MOVE}")


def _no_connection(connect):
    def refuse(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise NotAUnitTest(f"unit tests open no network connections ({address!r}): {MOVE}")
        return connect(self, address)

    return refuse


# Every way the code under test starts a process: subprocess, multiprocessing (spawn and fork) and os itself.
PROCESS_STARTS = [
    (subprocess.Popen, "__init__"),
    (multiprocessing.process.BaseProcess, "start"),
    (os, "fork"),
    (os, "posix_spawn"),
    (os, "posix_spawnp"),
    (os, "system"),
    (multiprocessing.util, "spawnv_passfds"),  # the fork server and resource tracker start this way
]


@contextmanager
def unit_only() -> Iterator[None]:
    saved = [(owner, name, getattr(owner, name)) for owner, name in PROCESS_STARTS]
    connects = [(name, getattr(socket.socket, name)) for name in ("connect", "connect_ex")]
    for owner, name, _ in saved:
        setattr(owner, name, _no_process)
    for name, connect in connects:
        setattr(socket.socket, name, _no_connection(connect))
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
        for name, connect in connects:
            setattr(socket.socket, name, connect)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with unit_only():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with unit_only():
        return (yield)
