"""The serving probe runs in its own process: what goes wrong in it fails the load check with the reason, and a
probe never asked ends without timing."""

import pytest

from pipelines.evaluation.checks import load
from registry.errors import TailorError


def test_a_probe_that_cannot_load_fails_with_its_error_when_asked(tmp_path):
    with load.Probe.start(tmp_path / "no-adapter", tmp_path / "no-base", ["hello"]) as probe:
        with pytest.raises(
            TailorError, match=r"(?s)serving probe failed \(exit 1\).*no-adapter is not a Tailor adapter folder"
        ):
            probe.result()


def test_leaving_a_probe_never_asked_ends_its_process(tmp_path):
    with load.Probe.start(tmp_path / "no-adapter", tmp_path / "no-base", ["hello"]) as probe:
        running = probe._proc
    assert running.poll() is not None
