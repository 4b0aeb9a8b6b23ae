"""The unit layer refuses processes and connections, and the folders name the layers."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO, layer_of
from tests.unit.conftest import NotAUnitTest


def _nothing() -> None:
    pass


@pytest.mark.parametrize(
    "start",
    [
        lambda: subprocess.run([sys.executable, "-c", "pass"], check=False),
        lambda: multiprocessing.get_context("spawn").Process(target=_nothing).start(),
        lambda: multiprocessing.get_context("fork").Process(target=_nothing).start(),
        lambda: os.system("true"),
        lambda: os.fork(),
        lambda: multiprocessing.get_context("forkserver").Process(target=_nothing).start(),
    ],
    ids=["subprocess", "spawn", "fork", "os.system", "os.fork", "forkserver"],
)
def test_starting_a_process_fails_the_test_and_says_where_it_belongs(start):
    with pytest.raises(NotAUnitTest, match="start no processes .*move this test to tests/integration"):
        start()


@pytest.mark.parametrize(("family", "address"), [(socket.AF_INET, ("127.0.0.1", 9)), (socket.AF_INET6, ("::1", 9))])
def test_connecting_anywhere_fails_the_test_loopback_included(family, address):
    with socket.socket(family) as sock:
        with pytest.raises(NotAUnitTest, match="open no network connections"):
            sock.connect(address)
        with pytest.raises(NotAUnitTest, match="open no network connections"):
            sock.connect_ex(address)


def test_a_library_that_falls_back_on_any_exception_cannot_hide_the_refusal():
    def probe() -> str:
        try:
            return subprocess.run(["file", "-b", sys.executable], capture_output=True, text=True).stdout
        except Exception:
            return "unknown"

    with pytest.raises(NotAUnitTest):
        probe()


def test_a_local_socket_pair_still_works_for_event_loops():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x")
        assert right.recv(1) == b"x"


def test_each_folder_names_its_layer_and_this_test_carries_no_integration_mark(request):
    assert layer_of(REPO / "tests" / "integration" / "registry" / "test_x.py") == "integration"
    assert layer_of(REPO / "tests" / "e2e" / "test_x.py") == "e2e"
    assert layer_of(REPO / "tests" / "unit" / "serving" / "test_x.py") == "unit"
    assert layer_of(REPO / "tests" / "conftest.py") is None
    assert layer_of(REPO / "bench" / "flow.py") is None
    assert request.node.get_closest_marker("integration") is None
