"""The cost meter: wall vs CPU time, peak memory measured during the block, money from the rate."""

from __future__ import annotations

import time

import pytest

from pipelines.training.cost_meter import CostMeter


def test_waiting_costs_wall_time_but_almost_no_cpu_and_money_follows_the_rate():
    with CostMeter() as meter:
        time.sleep(0.3)
    report = meter.report(trainable_params=10, adapter_bytes=20, examples=30, cost_per_hour=3.6, currency="EUR")
    assert report.wall_seconds >= 0.3 and report.cpu_seconds < 0.2
    assert report.money == pytest.approx(report.wall_seconds / 1000, rel=1e-3)  # 3.6 per hour = 0.001 per second
    assert report.examples_per_second == pytest.approx(30 / report.wall_seconds, rel=1e-2)
    assert report.gpu_seconds is None and report.peak_gpu_mb is None


def test_peak_memory_is_the_peak_inside_the_block_not_after_it():
    with CostMeter() as meter:
        block = bytearray(200 * 2**20)  # 200 MB, touched so it is resident
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(0.1)
        del block
    after = CostMeter()
    with after:
        time.sleep(0.05)
    assert meter.usage.peak_rss_mb - after.usage.peak_rss_mb > 150


def test_a_report_before_the_block_ends_is_an_error():
    with pytest.raises(RuntimeError, match="before the measured block finished"):
        CostMeter().report(trainable_params=0, adapter_bytes=0, examples=0, cost_per_hour=0, currency="EUR")
