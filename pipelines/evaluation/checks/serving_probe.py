"""A serving process in miniature, run by the load check in a fresh interpreter.

It imports only what serving imports (``serving.model``), loads the base model, then the adapter it is
handed, answers requests, and prints one JSON object with what it measured. Run as
``python -m pipelines.evaluation.checks.serving_probe BASE_MODEL_DIR``; on its stdin it reads a job line
(``{"adapter": ADAPTER_DIR, "texts": TEXTS_JSON}``) and then :data:`GO`.

It loads the base as soon as it starts and waits for the job, so a retrain can start it while the candidate
trains (``pipelines.evaluation.checks.load.launch_ahead``); it loads the adapter when handed the job and
times only when GO arrives: the evaluator lets it time once its other checks are done, so nothing of the
evaluator's runs beside the timing. Stdin closed before either line (the evaluator failed, or no candidate
came) ends it without timing.

The candidate is timed against the bare base model (encoder, mean pooling and a head, no adapter) in
the same process, calls interleaved: whatever else the machine is doing slows both alike, so their
ratios are a property of the adapter, not of the minute they were measured in. The bare base's own
spread (p95 over p50) says how noisy that minute was.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

LATENCY_ROUNDS = 60
# Sequential stopping: after each stage of this many rounds, stop when both spreads (p95 / p50) are
# at most TIGHT_SPREAD; a quiet minute is measured in a third of the calls, a noisy one in all of them.
LATENCY_STAGE = 20
TIGHT_SPREAD = 1.5
WARMUP_CALLS = 3
THROUGHPUT_BATCH = 32
# Throughput rounds (one batch per model each) stop once both models' two fastest rounds agree within
# THROUGHPUT_AGREE, after at least two: the best round is then no lucky outlier. A busy minute, where
# rounds disagree, gets up to THROUGHPUT_ROUNDS.
THROUGHPUT_ROUNDS = 6
THROUGHPUT_AGREE = 0.9
GO = "go"

Predict = Callable[[list[str]], object]


def load_average() -> float:
    """The machine's 1-minute load average (runnable processes), or NaN where the OS has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def compare(base: Predict, candidate: Predict, texts: list[str]) -> dict[str, dict[str, float]]:
    """p50/p95 at batch 1 and rows/s at batch ``THROUGHPUT_BATCH`` for both, calls interleaved.

    Each round times one call of each on the same text, the order alternating between rounds, so a
    burst of load from elsewhere lands on both alike. Latency rounds stop early (:func:`settled`), throughput
    rounds too (:func:`repeated`).
    """
    runners = {"base": base, "candidate": candidate}
    for text in texts[:WARMUP_CALLS]:
        for run in runners.values():
            run([text])
    latencies: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(LATENCY_ROUNDS):
        text = [texts[i % len(texts)]]
        for name in ("base", "candidate") if i % 2 == 0 else ("candidate", "base"):
            t0 = time.perf_counter()
            runners[name](text)
            latencies[name].append((time.perf_counter() - t0) * 1000.0)
        if (i + 1) % LATENCY_STAGE == 0 and settled(latencies):
            break
    rows = [texts[i % len(texts)] for i in range(THROUGHPUT_BATCH)]
    batch_seconds: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(THROUGHPUT_ROUNDS):
        for name in ("base", "candidate") if i % 2 == 0 else ("candidate", "base"):
            t0 = time.perf_counter()
            runners[name](rows)
            batch_seconds[name].append(time.perf_counter() - t0)
        if i > 0 and repeated(batch_seconds):
            break
    return {
        name: {
            "p50_ms": float(np.percentile(latencies[name], 50)),
            "p95_ms": float(np.percentile(latencies[name], 95)),
            # The best round: the least disturbed by the rest of the machine, for both alike.
            "throughput_per_s": THROUGHPUT_BATCH / min(batch_seconds[name]),
            "latency_calls": float(len(latencies[name])),
            "throughput_rounds": float(len(batch_seconds[name])),
        }
        for name in runners
    }


def settled(latencies: dict[str, list[float]]) -> bool:
    """Whether every model's latencies so far have a spread (p95 / p50) of at most ``TIGHT_SPREAD``."""
    return all(np.percentile(ms, 95) <= TIGHT_SPREAD * np.percentile(ms, 50) for ms in latencies.values())


def repeated(batch_seconds: dict[str, list[float]]) -> bool:
    """Whether every model's fastest round so far is at least ``THROUGHPUT_AGREE`` of its second fastest."""
    return all(min(s) >= THROUGHPUT_AGREE * sorted(s)[1] for s in batch_seconds.values())


def timings(base: Predict, candidate: Predict, texts: list[str]) -> dict[str, float]:
    """:func:`compare` flattened for the load check: the candidate's numbers, the base's (``base_``), their
    ratios, the base's own spread (p95 / p50), and the machine's load average before and after."""
    before = load_average()
    timed = compare(base, candidate, texts)
    b, c = timed["base"], timed["candidate"]
    return {
        **c,
        **{f"base_{key}": value for key, value in b.items()},
        "p50_ratio": c["p50_ms"] / b["p50_ms"],
        "p95_ratio": c["p95_ms"] / b["p95_ms"],
        "throughput_ratio": c["throughput_per_s"] / b["throughput_per_s"],
        "base_spread": b["p95_ms"] / b["p50_ms"],
        "load_average_before": before,
        "load_average_after": load_average(),
        "cpu_count": float(os.cpu_count() or 0),
        "throughput_batch": THROUGHPUT_BATCH,
    }


def bare_base(base, labels: int, max_length: int) -> Predict:
    """The base model with a head and no adapter (a ``LoadedBase``), answering as a classifier would."""
    import torch

    from serving.model import MeanPoolClassifier

    model = MeanPoolClassifier(base.encoder, labels).eval()

    def predict(batch: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for start in range(0, len(batch), THROUGHPUT_BATCH):
                enc = base.tokenize(batch[start : start + THROUGHPUT_BATCH], max_length)
                out.append(torch.softmax(model(**enc).float(), dim=-1).numpy())
        return np.concatenate(out)

    return predict


def measure(
    base_model_dir: Path, job: Callable[[], tuple[Path, list[str]] | None], go: Callable[[], bool]
) -> dict[str, float] | None:
    """Load the base, take the adapter and texts ``job()`` hands over, load the adapter, wait for ``go()``, time
    the candidate against the bare base, and read memory: one flat record for the load check; None when
    ``job()`` or ``go()`` says not to time."""
    import psutil
    import torch

    # One thread: with two, a forward pass waits for whichever thread another process has pushed off
    # its core, and on a busy machine the spread of both models grows tenfold; one thread is slowed
    # only by its own share of the CPU, which the interleaving shares out fairly.
    torch.set_num_threads(1)
    started = time.perf_counter()
    from registry.adapter_folder import AdapterMeta
    from serving.model import load_base, load_classifier

    imported = time.perf_counter()
    # Loaded before the adapter is known, so under the folder's name: only the hashes decide whether an
    # adapter matches its base (load_classifier), never the recorded name.
    base = load_base(base_model_dir, model_id=base_model_dir.name, cache_dir=None)
    handed = job()
    if handed is None:
        return None
    adapter_dir, texts = handed
    meta = AdapterMeta.read(adapter_dir)
    bare = bare_base(base, len(meta.labels), meta.max_length)
    bare(texts[:1])
    base_rss = psutil.Process().memory_info().rss / 2**20
    loaded_at = time.perf_counter()
    classifier = load_classifier(adapter_dir, base)
    loaded = time.perf_counter()
    if not go():
        return None
    timed = timings(bare, lambda batch: classifier.predict_proba(batch, batch_size=THROUGHPUT_BATCH), texts)
    return {
        "import_seconds": imported - started,
        "load_seconds": loaded - loaded_at,
        **timed,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
        "base_rss_mb": base_rss,
        # What the probe ran at: a probe started by a lowered process would time a background job.
        "niceness": float(os.getpriority(os.PRIO_PROCESS, 0)),
        "torch_threads": float(torch.get_num_threads()),
    }


def _handed_job() -> tuple[Path, list[str]] | None:
    line = sys.stdin.readline()
    if not line.strip():
        return None
    job = json.loads(line)
    return Path(job["adapter"]), json.loads(Path(job["texts"]).read_text(encoding="utf-8"))


def _told_to_go() -> bool:
    return sys.stdin.readline().strip() == GO


if __name__ == "__main__":
    measured = measure(Path(sys.argv[1]), _handed_job, _told_to_go)
    if measured is not None:
        print(json.dumps(measured))
    # The evaluator waits for this process to end, and Python's shutdown with torch and transformers loaded takes
    # ~0.9 s (2 cores) doing nothing this probe needs: its output is flushed and it wrote nothing else.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
