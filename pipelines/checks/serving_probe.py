"""A serving process in miniature, run by the load check in a fresh interpreter.

It imports only what serving imports (``pipelines.model``), loads the base model and the adapter,
answers requests, and prints one JSON object with what it measured. Run as
``python -m pipelines.checks.serving_probe ADAPTER_DIR BASE_MODEL_DIR TEXTS_JSON``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

LATENCY_CALLS = 40
WARMUP_CALLS = 3
THROUGHPUT_BATCH = 32
THROUGHPUT_ROWS = 64


def measure(adapter_dir: Path, base_model_dir: Path, texts: list[str]) -> dict[str, float]:
    """Load, then time single requests and batched throughput; memory read at the end."""
    import numpy as np
    import psutil

    started = time.perf_counter()
    from pipelines.model import load_base, load_classifier

    imported = time.perf_counter()
    classifier = load_classifier(adapter_dir, load_base(base_model_dir))
    loaded = time.perf_counter()

    for text in texts[:WARMUP_CALLS]:
        classifier.predict_proba([text])
    latencies = []
    for i in range(LATENCY_CALLS):
        t0 = time.perf_counter()
        classifier.predict_proba([texts[i % len(texts)]])
        latencies.append((time.perf_counter() - t0) * 1000.0)
    rows = [texts[i % len(texts)] for i in range(THROUGHPUT_ROWS)]
    t0 = time.perf_counter()
    classifier.predict_proba(rows, batch_size=THROUGHPUT_BATCH)
    batch_seconds = time.perf_counter() - t0
    memory = psutil.Process().memory_info()
    return {
        "import_seconds": imported - started,
        "load_seconds": loaded - imported,
        "p50_ms": float(np.percentile(latencies, 50)),
        "p95_ms": float(np.percentile(latencies, 95)),
        "throughput_per_s": THROUGHPUT_ROWS / batch_seconds,
        "rss_mb": memory.rss / 2**20,
        "latency_calls": LATENCY_CALLS,
        "throughput_batch": THROUGHPUT_BATCH,
    }


if __name__ == "__main__":
    adapter, base, texts_file = sys.argv[1:4]
    print(json.dumps(measure(Path(adapter), Path(base), json.loads(Path(texts_file).read_text()))))
