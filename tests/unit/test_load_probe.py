"""The serving probe starts before the other checks and times only when asked: a probe never asked ends
without timing, and what goes wrong in it fails the load check with the reason. It stops timing early
only when both models' latencies are tight."""

import itertools

import pytest

from pipelines.evaluation.checks import load, serving_probe
from registry.errors import TailorError


def test_a_probe_with_no_text_starts_nothing_and_says_why_when_asked(tmp_path):
    with load.Probe.start(tmp_path / "adapter", tmp_path / "base", []) as probe:
        with pytest.raises(TailorError, match="at least one text"):
            probe.result()


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


class Clock:
    """A clock that only the fake models move: the test cannot depend on how busy the machine is."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


def model(clock: Clock, ms: float, slow_every: int = 0):
    """A predict taking ``ms``, or four times that every ``slow_every``-th call."""
    calls = itertools.count(1)

    def predict(batch):
        slow = slow_every and next(calls) % slow_every == 0
        clock.now += (ms * 4 if slow else ms) / 1000

    return predict


def test_a_quiet_minute_is_timed_in_one_stage_and_a_noisy_one_in_every_round(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(serving_probe, "time", clock)
    quiet = serving_probe.compare(model(clock, 2), model(clock, 4), ["a text"])
    assert quiet["base"]["latency_calls"] == quiet["candidate"]["latency_calls"] == serving_probe.LATENCY_STAGE
    assert quiet["candidate"]["p50_ms"] == pytest.approx(2 * quiet["base"]["p50_ms"])
    noisy = serving_probe.compare(model(clock, 2, slow_every=5), model(clock, 2), ["a text"])
    assert noisy["base"]["latency_calls"] == serving_probe.LATENCY_ROUNDS
    assert noisy["base"]["p95_ms"] == pytest.approx(8.0)
