"""A probe with nothing to time says so when asked; the probe stops timing early only when both models'
latencies are tight and their best throughput round is repeated (the probe's own process: tests/integration/pipelines/evaluation/test_load_probe_process.py)."""

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


def batch_model(clock: Clock, batch_ms: list[float]):
    """A predict taking 2 ms for one text and ``batch_ms[i]`` for its i-th full batch (the last one after)."""
    batches = itertools.count()

    def predict(batch):
        ms = batch_ms[min(next(batches), len(batch_ms) - 1)] if len(batch) == serving_probe.THROUGHPUT_BATCH else 2
        clock.now += ms / 1000

    return predict


@pytest.mark.parametrize(
    "base_ms, rounds",
    [
        ([40], 2),  # steady: two rounds agree
        ([40, 80, 41], 3),  # a burst slowed the second round: a third one repeats the first
        ([80, 40, 80, 41], 4),
        ([40 * 1.2**i for i in range(10)], serving_probe.THROUGHPUT_ROUNDS),  # never repeated: every round
    ],
)
def test_throughput_rounds_stop_once_the_best_round_is_repeated(monkeypatch, base_ms, rounds):
    clock = Clock()
    monkeypatch.setattr(serving_probe, "time", clock)
    timed = serving_probe.compare(batch_model(clock, base_ms), batch_model(clock, [50]), ["a text"])
    assert timed["base"]["throughput_rounds"] == timed["candidate"]["throughput_rounds"] == rounds
    assert timed["base"]["throughput_per_s"] == pytest.approx(32 / 0.040)  # the best round
    assert timed["candidate"]["throughput_per_s"] == pytest.approx(32 / 0.050)
