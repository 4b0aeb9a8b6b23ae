"""Measure what a block of work costs: wall and CPU time, peak memory, GPU time and memory, money."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import psutil

from pipelines.records import CostReport

SAMPLE_SECONDS = 0.02


@dataclass
class Usage:
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    gpu_seconds: float | None
    peak_gpu_mb: float | None


class CostMeter:
    """``with CostMeter(device) as meter: ...`` then ``meter.usage`` / ``meter.report(...)``.

    Peak RSS is sampled by a thread during the block (not the process's lifetime peak), so two
    runs in one process are measured apart. GPU seconds are the wall seconds of a block that ran
    on CUDA (the device is held for the whole block), peak GPU memory is torch's allocator peak.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.usage: Usage | None = None
        self._stop = threading.Event()
        self._peak_rss = 0
        self._process = psutil.Process(os.getpid())

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._peak_rss = max(self._peak_rss, self._process.memory_info().rss)

    def __enter__(self) -> "CostMeter":
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self._peak_rss = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, name="cost-meter", daemon=True)
        self._thread.start()
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        gpu_seconds = peak_gpu_mb = None
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            peak_gpu_mb = torch.cuda.max_memory_allocated() / 2**20
        wall, cpu = time.perf_counter() - self._wall0, time.process_time() - self._cpu0
        if self.device == "cuda":
            gpu_seconds = wall
        self._stop.set()
        self._thread.join()
        self._peak_rss = max(self._peak_rss, self._process.memory_info().rss)
        self.usage = Usage(wall, cpu, self._peak_rss / 2**20, gpu_seconds, peak_gpu_mb)

    def report(
        self, *, trainable_params: int, adapter_bytes: int, examples: int, cost_per_hour: float, currency: str
    ) -> CostReport:
        """The CostReport of the finished block; money = hourly rate × wall hours.

        Raises:
            RuntimeError: called before the block finished.
        """
        if self.usage is None:
            raise RuntimeError("CostMeter.report() called before the measured block finished")
        u = self.usage
        return CostReport(
            wall_seconds=round(u.wall_seconds, 3),
            cpu_seconds=round(u.cpu_seconds, 3),
            peak_rss_mb=round(u.peak_rss_mb, 1),
            gpu_seconds=None if u.gpu_seconds is None else round(u.gpu_seconds, 3),
            peak_gpu_mb=None if u.peak_gpu_mb is None else round(u.peak_gpu_mb, 1),
            trainable_params=trainable_params,
            adapter_bytes=adapter_bytes,
            examples_per_second=round(examples / u.wall_seconds, 2) if u.wall_seconds > 0 else 0.0,
            money=round(cost_per_hour * u.wall_seconds / 3600, 6),
            currency=currency,
        )
