"""Traffic recording's cost to a request: p95 at batch 1 of `tailor serve` with and without
`--record-traffic`, calls interleaved in one run over one throw-away SeaweedFS.

Two servers of the same adapter, one recording (every request sampled, the rate cap raised so
nothing is dropped, batches flushed every second so the writer thread runs during the
measurement), the other not; calls alternate between them. Also times ``TrafficRecorder.offer``
alone, the only recording work on the request path.

    .venv/bin/python bench/traffic.py [--requests 300]

Prints a table and saves bench/results/traffic.json. Target: recording adds at most 10 % to p95.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402
from bench.serve import (
    TEXTS,
    bench_adapter,
    bench_registry,
    http_predict,
    percentile,
    start_server,  # noqa: E402
    stop_server,
)

MONITORING = "recording: {sample_rate: 1.0, max_rows_per_second: 100000, max_batch_seconds: 1}\n"


def offer_cost(calls: int = 20000) -> float:
    """Microseconds per ``offer`` of one text (in-process, nothing written)."""
    import numpy as np

    from serving.traffic import RecordingLimits, TrafficRecorder

    recorder = TrafficRecorder(store=None, limits=RecordingLimits(max_rows_per_second=1e9, max_queue_rows=10**9))
    conf = np.array([0.9])
    began = time.perf_counter()
    for i in range(calls):
        recorder.offer("bench", "v1", str(i), TEXTS[:1], ["billing"], conf)
    return (time.perf_counter() - began) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=arguments.at_least(10), default=300, help="batch-1 calls per server")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "traffic.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import httpx

    from bench.embedded_store import store_env, temporary_store
    from pipelines.servers import seaweedfs
    from pipelines.settings import load_settings
    from pipelines.training.params import TrainParams
    from registry.store import S3ObjectStore
    from serving.model import load_base
    from serving.traffic import traffic_prefix

    settings = load_settings()
    work = Path(tempfile.mkdtemp(prefix="tailor-bench-traffic-"))
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=work)
    adapter_dir = bench_adapter(work, base, TrainParams(min_steps=4, max_steps=4, noise_filter="none", select="lora"))
    (work / "monitoring.yaml").write_text(MONITORING, encoding="utf-8")
    with temporary_store(work / "home", "bench-traffic") as cfg:
        trainer, approver = bench_registry(cfg, base, "trainer"), bench_registry(cfg, base, "approver")
        names = ["plain", "recorded"]
        for name in names:
            trainer.register(adapter_dir, name, reason="benchmark")
            approver.promote(name, "v1", "production", reason="benchmark")
        env = store_env(cfg, work / "home", TAILOR_ROLE="reader")
        plain, plain_url, _, _ = start_server(["plain"], env, work)
        os.chdir(work)  # start_server names its logs after the arguments: a relative path keeps them in ``work``
        recorded, recorded_url, _, _ = start_server(
            ["recorded"], env, work, ("--record-traffic", "--monitoring", "monitoring.yaml")
        )
        times: dict[str, list[float]] = {"plain": [], "recorded": []}
        try:
            with httpx.Client(timeout=120) as client:
                calls = {
                    "plain": http_predict(client, plain_url, "plain"),
                    "recorded": http_predict(client, recorded_url, "recorded"),
                }
                for fn in calls.values():
                    for text in TEXTS:
                        fn([text])  # warm-up
                for i in range(args.requests):
                    # Alternate which goes first, so neither always follows the other's garbage.
                    for name in names if i % 2 == 0 else names[::-1]:
                        began = time.perf_counter()
                        calls[name]([TEXTS[i % len(TEXTS)]])
                        times[name].append((time.perf_counter() - began) * 1000)
        finally:
            stop_server(plain)
            stop_server(recorded)  # its shutdown writes what is still queued
        admin = S3ObjectStore(seaweedfs.admin_settings(cfg))
        stored = sum(len(admin.get(o.key).splitlines()) for o in admin.list(traffic_prefix("recorded")))

    result = {
        name: {"p50_ms": round(statistics.median(t), 2), "p95_ms": round(percentile(t, 0.95), 2)}
        for name, t in times.items()
    }
    ratio = result["recorded"]["p95_ms"] / result["plain"]["p95_ms"]
    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()[0],
        },
        "requests": args.requests,
        "latency": result,
        "p95_ratio": round(ratio, 3),
        "rows_recorded": stored,
        "rows_expected": args.requests + len(TEXTS),
        "offer_us": round(offer_cost(), 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print("| server | p50 ms | p95 ms |")
    print("|---|---|---|")
    for name, r in result.items():
        print(f"| {name} | {r['p50_ms']} | {r['p95_ms']} |")
    print(
        f"p95 recorded / plain: {ratio:.3f} (target <= 1.10); rows recorded {stored} of "
        f"{out['rows_expected']}; offer() {out['offer_us']} us per request"
    )


if __name__ == "__main__":
    main()
