"""The serving probe runs in its own process: what goes wrong in it fails the load check with the reason, a
probe never asked ends without timing, one launched ahead (during training) is the one evaluate takes, and it
ends without Python's shutdown, its output flushed."""

import subprocess
import sys

import pytest

from pipelines.evaluation.checks import load
from registry.errors import TailorError
from tests.tiny_encoders import build


@pytest.fixture(autouse=True)
def no_probe_left():
    yield
    load.discard_launched()  # a test that failed half-way must not leave a loaded probe to the next


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    return build("bert", tmp_path_factory.mktemp("base") / "bert")


def test_a_probe_that_cannot_load_fails_with_its_error_when_asked(tmp_path):
    with load.Probe.start(tmp_path / "no-adapter", tmp_path / "no-base", ["hello"]) as probe:
        with pytest.raises(TailorError, match=r"(?s)serving probe failed \(exit 1\).*no-base does not exist"):
            probe.result()


def test_leaving_a_probe_never_asked_ends_its_process(tmp_path):
    with load.Probe.start(tmp_path / "no-adapter", tmp_path / "no-base", ["hello"]) as probe:
        running = probe._proc
    assert running.poll() is not None


def test_a_probe_launched_ahead_is_taken_by_the_next_start_on_its_base_and_loads_the_adapter_it_is_handed(
    tiny_base, tmp_path
):
    load.launch_ahead(tiny_base)
    launched = load._launched[tiny_base.resolve()]._proc
    with load.Probe.start(tmp_path / "no-adapter", tiny_base, ["hello"]) as probe:
        assert probe._proc is launched and not load._launched
        with pytest.raises(TailorError, match=r"(?s)serving probe failed \(exit 1\).*no-adapter"):
            probe.result()


def test_a_probe_launched_for_another_base_or_left_over_is_not_taken_and_is_ended_when_discarded(tiny_base, tmp_path):
    load.launch_ahead(tiny_base)
    launched = load._launched[tiny_base.resolve()]._proc
    with load.Probe.start(tmp_path / "no-adapter", tmp_path / "no-base", ["hello"]) as probe:
        assert probe._proc is not launched
    load.discard_launched()
    assert launched.wait(timeout=10) is not None and not load._launched


def test_a_probe_launched_ahead_that_died_is_replaced_by_a_fresh_one_and_its_end_is_logged(tiny_base, tmp_path, caplog):
    load.launch_ahead(tiny_base)
    launched = load._launched[tiny_base.resolve()]._proc
    launched.kill()
    launched.wait(timeout=10)
    with load.Probe.start(tmp_path / "no-adapter", tiny_base, ["hello"]) as probe:
        assert probe._proc is not launched and probe.alive()
    assert "the load probe started during training ended (exit -9)" in caplog.text


def test_a_probe_ends_without_pythons_shutdown_which_the_evaluator_would_wait_for_but_flushes_its_output(
    tiny_base, tmp_path
):
    # An exit handler stands for the shutdown (~0.9 s with torch loaded); output still in the buffer when the
    # probe ends stands for its result line.
    shutdown = tmp_path / "shutdown-ran"
    script = (
        "import atexit, runpy, sys\n"
        f"atexit.register(lambda: open({str(shutdown)!r}, 'w').close())\n"
        "sys.stdout.write('unflushed')\n"
        f"sys.argv = ['serving_probe', {str(tiny_base)!r}]\n"
        "runpy.run_module('pipelines.evaluation.checks.serving_probe', run_name='__main__')\n"
    )
    ended = subprocess.run([sys.executable, "-c", script], stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert ended.returncode == 0, ended.stderr.decode()[-800:]
    assert ended.stdout == b"unflushed"
    assert not shutdown.exists()
