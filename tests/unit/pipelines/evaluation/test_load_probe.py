"""A probe with nothing to time says so when asked; the probe stops timing early only when both models'
latencies are tight (the probe's own process: tests/integration/pipelines/evaluation/test_load_probe_process.py)."""

import itertools

import pytest

from pipelines.evaluation.checks import load, serving_probe
from registry.errors import TailorError


def test_a_probe_with_no_text_starts_nothing_and_says_why_when_asked(tmp_path):
    with load.Probe.start(tmp_path / "adapter", tmp_path / "base", []) as probe:
        with pytest.raises(TailorError, match="at least one text"):
            probe.result()


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
