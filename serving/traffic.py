"""Recording a sample of live traffic (requests and predictions) to the object store, off the request path.

A request only offers its rows (``TrafficRecorder.offer``): a random draw, a rate cap and a bounded
queue decide in a few microseconds whether they are kept, and nothing is serialised or sent there.
A background thread turns the queue into JSONL batches, flushed when a batch is full or old enough,
under ``traffic/<adapter>/<YYYY>/<MM>/<DD>/<time>-<id>.jsonl``, each stored create-only with its own
retention (recorded texts are personal data under Japan's APPI; they are not kept for the audit
log's 10 years). What is dropped is counted, never blocked on.

Texts may be stored as their sha256 instead, with the monitor's per-text features computed here, in
the background thread (``features``), so drift can still be judged without keeping the words.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Sequence

import numpy as np

from registry.errors import TailorError
from registry.object_store import ObjectStore

log = logging.getLogger(__name__)

TRAFFIC_PREFIX = "traffic/"
# Per text: {"text_chars": …, "unknown_token_share": …, "chars_per_token": …, "embedding": [...]}.
Features = Callable[[list[str]], list[dict]]


def traffic_prefix(name: str) -> str:
    return f"{TRAFFIC_PREFIX}{name}/"


def batch_key(name: str, at: datetime, batch_id: str) -> str:
    """Keys sort by time, so a reader lists a period by prefix and the retention expires by key."""
    return f"{traffic_prefix(name)}{at:%Y/%m/%d}/{at:%Y%m%dT%H%M%S%fZ}-{batch_id}.jsonl"


def key_time(key: str) -> datetime | None:
    """The time ``batch_key`` put in ``key``, or None for a key it did not write."""
    stem = key.rsplit("/", 1)[-1].split("-", 1)[0]
    try:
        return datetime.strptime(stem, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RecordingLimits:
    """How much is recorded, and how it is batched. ``monitoring.yaml``'s ``recording`` section."""

    sample_rate: float = 1.0  # share of requests recorded
    max_rows_per_second: float = 50.0  # texts recorded per second at most, bursts included
    max_batch_rows: int = 500
    max_batch_seconds: float = 60.0
    max_queue_rows: int = 10_000  # waiting to be written; past it rows are dropped (a store outage)
    hash_texts: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be between 0 and 1, got {self.sample_rate}")
        for name in ("max_rows_per_second", "max_batch_rows", "max_batch_seconds", "max_queue_rows"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class TrafficRow:
    """One recorded text and what answered it; a line of a batch."""

    request_id: str
    index: int  # the text's position in its request
    time: str
    adapter: str
    version: str
    label: str
    confidence: float
    text_sha256: str
    text: str | None = None  # None when texts are recorded as hashes
    features: dict | None = None  # computed at record time when the text is not kept


@dataclass
class RecorderStats:
    offered: int = 0
    sampled_out: int = 0
    rate_dropped: int = 0
    queue_dropped: int = 0
    recorded: int = 0
    batches: int = 0
    failed_batches: int = 0
    failed_rows: int = 0
    last_error: str | None = None


@dataclass
class _Pending:
    request_id: str
    at: float
    adapter: str
    version: str
    texts: Sequence[str]
    labels: Sequence[str]
    confidences: np.ndarray


@dataclass
class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``rate`` (one second of burst) held."""

    rate: float
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = self.rate

    def take(self, n: int, now: float) -> bool:
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < n:
            return False
        self.tokens -= n
        return True


class TrafficRecorder:
    """Samples requests into a bounded queue and writes them as JSONL batches from a daemon thread.

    Args:
        store: the store as the recorder identity (it may write ``traffic/`` only); each ``put`` is
            create-only with retention, which the store's settings carry (``object_lock_days``).
        limits: sampling, rate and batch limits.
        features: per-text monitor features, required with ``limits.hash_texts``.
    """

    def __init__(
        self,
        store: ObjectStore,
        limits: RecordingLimits,
        *,
        features: Features | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if limits.hash_texts and features is None:
            raise ValueError("hash_texts needs the monitor's features computed at record time")
        self.store, self.limits, self._features = store, limits, features
        self._rng = rng or random.Random()
        self._bucket = _Bucket(limits.max_rows_per_second)
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._oldest: float | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = RecorderStats()

    def offer(
        self,
        adapter: str,
        version: str,
        request_id: str,
        texts: Sequence[str],
        labels: Sequence[str],
        confidences: np.ndarray,
    ) -> bool:
        """Keep one request's rows for recording if the sample, rate and queue allow. Never blocks on I/O."""
        now = time.monotonic()
        with self._lock:
            self.stats.offered += 1
            if self._rng.random() >= self.limits.sample_rate:
                self.stats.sampled_out += 1
                return False
            if not self._bucket.take(len(texts), now):
                self.stats.rate_dropped += 1
                return False
            if self._queued_rows + len(texts) > self.limits.max_queue_rows:
                self.stats.queue_dropped += 1
                return False
            self._queue.append(_Pending(request_id, time.time(), adapter, version, texts, labels, confidences))
            self._queued_rows += len(texts)
            self._oldest = self._oldest or now
            full = self._queued_rows >= self.limits.max_batch_rows
        if full:
            self._wake.set()
        return True

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="tailor-traffic", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread after writing what is queued (a server's shutdown loses no sampled row)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(min(1.0, self.limits.max_batch_seconds))
            self._wake.clear()
            with self._lock:
                due = self._queued_rows >= self.limits.max_batch_rows or (
                    self._oldest is not None and time.monotonic() - self._oldest >= self.limits.max_batch_seconds
                )
            if due:
                self.flush()

    def flush(self) -> int:
        """Write everything queued now, one batch per adapter and ``max_batch_rows``. Returns the rows written."""
        with self._lock:
            pending, self._queue = list(self._queue), deque()
            self._queued_rows, self._oldest = 0, None
        rows = []
        for item in pending:
            try:
                rows += self._rows(item)
            except Exception as err:  # noqa: BLE001 - features that fail on a text must not stop the writer thread
                self._failed(len(item.texts), f"features: {type(err).__name__}: {err}")
        by_adapter: dict[str, list[TrafficRow]] = {}
        for row in rows:
            by_adapter.setdefault(row.adapter, []).append(row)
        written = 0
        for adapter, kept in by_adapter.items():
            for start in range(0, len(kept), self.limits.max_batch_rows):
                written += self._write(adapter, kept[start : start + self.limits.max_batch_rows])
        return written

    def _rows(self, item: _Pending) -> list[TrafficRow]:
        at = datetime.fromtimestamp(item.at, timezone.utc).isoformat()
        hashed = self.limits.hash_texts
        features = self._features(list(item.texts)) if hashed and self._features else [None] * len(item.texts)
        return [
            TrafficRow(
                request_id=item.request_id,
                index=i,
                time=at,
                adapter=item.adapter,
                version=item.version,
                label=label,
                confidence=round(float(conf), 6),
                text_sha256=text_sha256(text),
                text=None if hashed else text,
                features=feats,
            )
            for i, (text, label, conf, feats) in enumerate(zip(item.texts, item.labels, item.confidences, features))
        ]

    def _failed(self, rows: int, error: str) -> None:
        with self._lock:
            self.stats.failed_batches += 1
            self.stats.failed_rows += rows
            self.stats.last_error = error
        log.warning("could not record %d rows of traffic: %s", rows, error)

    def _write(self, adapter: str, rows: list[TrafficRow]) -> int:
        body = "".join(json.dumps(asdict(row), ensure_ascii=False) + "\n" for row in rows).encode()
        key = batch_key(adapter, datetime.now(timezone.utc), uuid.uuid4().hex[:12])
        try:
            self.store.put(key, body, create_only=True, retain=True)
        except TailorError as err:  # a store outage loses these rows, counted; serving goes on
            self._failed(len(rows), str(err))
            return 0
        with self._lock:
            self.stats.batches += 1
            self.stats.recorded += len(rows)
        return len(rows)
