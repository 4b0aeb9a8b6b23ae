"""A token bucket: how often an expensive request may run, with a short burst allowed."""

from __future__ import annotations

import threading
import time
from typing import Callable


class RateLimit:
    """At most ``per_minute`` takes per minute on average, up to ``per_minute`` at once after a quiet minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self.per_minute, self._clock = per_minute, clock
        self._tokens, self._at = float(per_minute), clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token: 0.0 when taken, else the seconds until one is free (nothing taken)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.per_minute, self._tokens + (now - self._at) * self.per_minute / 60)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) * 60 / self.per_minute
