"""Serving benchmark: HTTP latency and throughput against the bare base model, merged vs unmerged, RSS per adapter.

Everything runs in one go on this machine so the ratios compare like with like. Four variants,
their calls interleaved round-robin: the bare base model in-process (encoder + mean pooling + a
head, no adapter), the adapter unmerged in-process (what `tailor serve` runs: LoRA beside the
shared base weights), the adapter merged into a private copy of the base, and `tailor serve` as a
real process behind uvicorn over a throw-away SeaweedFS with the adapter registered and promoted.
Then the same server with four adapters, for start-up time and RSS per extra adapter.

    .venv/bin/python bench/serve.py [--requests 100] [--batches 10]

Prints a table and saves bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402

TEXTS = [
    "I was charged twice on my invoice this month",
    "the app crashes when I click save on a report",
    "I cannot sign in since the last update",
    "refund my payment please, the order never arrived",
    "error 500 when I open the dashboard in the morning",
    "password reset email never arrives in my inbox",
    "why is there an extra fee on my card statement",
    "the export button is broken for large files",
    "my account is locked after three attempts",
    "the invoice amount does not match the quote",
    "the screen freezes right after login on my phone",
    "two factor code is rejected every single time",
]
TRAIN = {
    "billing": TEXTS[0::3][:4] + ["cancel the charge on my account", "I need a receipt for my payment"],
    "bug": TEXTS[1::3][:4] + ["the page does not load", "search returns nothing"],
    "login": TEXTS[2::3][:4] + ["I forgot my username", "session expires immediately"],
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(variants: dict, requests: int, batches: int, batch: int = 32) -> dict[str, dict]:
    """p50/p95 at batch 1 and texts/s at ``batch`` for each variant, calls interleaved.

    Round-robin over the variants, so a burst of load from elsewhere on the machine hits them
    all alike and the ratios stay fair even when the absolute numbers do not.
    """
    big = [TEXTS[i % len(TEXTS)] for i in range(batch)]
    for fn in variants.values():
        fn(TEXTS[:1]), fn(big)  # warm-up
    single: dict[str, list[float]] = {name: [] for name in variants}
    batched: dict[str, float] = {name: 0.0 for name in variants}
    for i in range(requests):
        for name, fn in variants.items():
            began = time.perf_counter()
            fn([TEXTS[i % len(TEXTS)]])
            single[name].append((time.perf_counter() - began) * 1000)
    for _ in range(batches):
        for name, fn in variants.items():
            began = time.perf_counter()
            fn(big)
            batched[name] += time.perf_counter() - began
    return {
        name: {
            "p50_ms": round(statistics.median(single[name]), 2),
            "p95_ms": round(percentile(single[name], 0.95), 2),
            "batch32_texts_per_s": round(batches * batch / batched[name], 1),
        }
        for name in variants
    }


def rss_mb(pid: int | None = None) -> float:
    import psutil

    return round(psutil.Process(pid or os.getpid()).memory_info().rss / 2**20, 1)


def in_process_variants(adapter_dir: Path, base) -> tuple[dict, dict]:
    """The bare base, the adapter unmerged (as served) and merged, as ``texts -> probabilities``; and their memory."""
    import torch
    from peft import PeftModel

    from registry.adapter_folder import AdapterMeta
    from serving.model import MeanPoolClassifier, load_classifier

    meta = AdapterMeta.read(adapter_dir)
    shared = {t.data_ptr() for t in base.encoder.parameters()}

    def own_mb(model) -> float:
        """Parameter memory a model does not share with the loaded base."""
        own = {t.data_ptr(): t.numel() * t.element_size() for t in model.parameters() if t.data_ptr() not in shared}
        return round(sum(own.values()) / 2**20, 2)

    def runner(model):
        def run(texts):
            with torch.inference_mode():
                return torch.softmax(model(**base.tokenize(texts, meta.max_length)), dim=-1).numpy()

        return run

    bare = MeanPoolClassifier(base.encoder, len(meta.labels)).eval()
    before = rss_mb()
    unmerged = load_classifier(adapter_dir, base)
    unmerged_rss = round(rss_mb() - before, 1)
    before = rss_mb()
    # Merging writes the LoRA product into the base weights: it needs a private copy of them.
    merged = (
        PeftModel.from_pretrained(MeanPoolClassifier(copy.deepcopy(base.encoder), len(meta.labels)), str(adapter_dir))
        .merge_and_unload()
        .eval()
    )
    merged_rss = round(rss_mb() - before, 1)
    probe = TEXTS[:8]
    memory = {
        "unmerged": {"extra_rss_mb": unmerged_rss, "own_parameters_mb": own_mb(unmerged._model)},
        "merged": {
            "extra_rss_mb": merged_rss,
            "own_parameters_mb": own_mb(merged),
            "max_abs_diff_vs_unmerged": float(abs(runner(merged)(probe) - unmerged.predict_proba(probe)).max()),
        },
    }
    return {"bare_base": runner(bare), "unmerged": unmerged.predict_proba, "merged": runner(merged)}, memory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    names: list[str], env: dict[str, str], log_dir: Path, extra: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str, float, dict]:
    import httpx

    port = free_port()
    args = [str(Path(sys.executable).parent / "tailor"), "serve", "--port", str(port), "--json", *extra]
    for name in names:
        args += ["--name", name]
    tag = f"{len(names)}{''.join(extra).replace('-', '')}"
    out_file = log_dir / f"serve-{tag}.out"
    began = time.monotonic()
    with open(out_file, "wb") as out, open(log_dir / f"serve-{tag}.err", "wb") as err:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err)
    url = f"http://127.0.0.1:{port}"
    while True:
        if proc.poll() is not None:
            raise SystemExit(
                f"tailor serve exited {proc.returncode}: {(log_dir / f'serve-{tag}.err').read_text(encoding='utf-8')}"
            )
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    return proc, url, round(time.monotonic() - began, 2), json.loads(out_file.read_text(encoding="utf-8"))


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def http_predict(client, url: str, name: str):
    def predict(texts):
        r = client.post(f"{url}/predict", json={"texts": texts, "adapter": name})
        r.raise_for_status()
        return r.json()

    return predict


def hot_swap(client, url: str, name: str, promote) -> dict:
    """Requests without pause while ``promote`` moves the alias, until the server answers with the new version."""
    import threading

    versions, failed, done = [], 0, threading.Event()
    mover = threading.Thread(target=lambda: (promote(), done.set()))
    mover.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (done.is_set() and versions and versions[-1] == "v2"):
        try:
            r = client.post(f"{url}/predict", json={"texts": [TEXTS[len(versions) % len(TEXTS)]], "adapter": name})
            r.raise_for_status()
            versions.append(r.json()["version"])
        except Exception:  # noqa: BLE001 - every failure counts, whatever it is
            failed += 1
            versions.append("failed")
    mover.join()
    return {"requests": len(versions), "failed": failed, "versions": sorted(set(versions))}


def bench_adapter(work: Path, base, params) -> Path:
    """A small adapter trained on ``TRAIN``, in ``work``/adapter."""
    from pipelines.records import LabeledBatch
    from pipelines.training.recipe import train

    texts = [t for label in TRAIN for t in TRAIN[label]]
    batch = LabeledBatch(
        source="bench",
        texts=texts,
        labels=[label for label in TRAIN for _ in TRAIN[label]],
        ids=[str(i) for i in range(len(texts))],
    )
    return Path(train(batch, work / "adapter", base=base, seed=0, params=params).adapter_dir)


def bench_registry(cfg, base, role: str):
    """The registry of the throw-away store as ``role`` (actor bench-ROLE)."""
    from pipelines.servers import seaweedfs
    from registry.governance import RegistryRules
    from registry.registry import Registry
    from registry.store import S3ObjectStore

    store_settings = seaweedfs.admin_settings(cfg, role=role, actor=f"bench-{role}")
    # It times serving; its freshly trained adapter carries no gate decision.
    return Registry(
        S3ObjectStore(store_settings),
        store_settings,
        base_model=base.fingerprint,
        rules=RegistryRules(require_gate=False),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=arguments.at_least(1), default=100, help="batch-1 calls per variant")
    parser.add_argument("--batches", type=arguments.at_least(1), default=10, help="batch-32 calls per variant")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "serve.json")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import httpx

    from bench.embedded_store import store_env, temporary_store
    from pipelines.settings import load_settings
    from pipelines.training.params import TrainParams
    from serving.model import load_base

    settings = load_settings()
    work = Path(tempfile.mkdtemp(prefix="tailor-bench-serve-"))
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=work)
    adapter_dir = bench_adapter(work, base, TrainParams(min_steps=10, max_steps=10, noise_filter="none"))
    variants, memory = in_process_variants(adapter_dir, base)

    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()[0],
        },
        "requests": args.requests,
        "batches_of_32": args.batches,
    }
    with temporary_store(work / "home", "bench-serve") as cfg:
        trainer, approver = bench_registry(cfg, base, "trainer"), bench_registry(cfg, base, "approver")
        names = [f"bench{i}" for i in range(4)]
        for name in names:
            trainer.register(adapter_dir, name, reason="benchmark")
            approver.promote(name, "v1", "production", reason="benchmark")
        env = store_env(cfg, work / "home", TAILOR_ROLE="reader")

        proc, url, ready_s, record = start_server(names[:1], env, work)
        fast, _, _, _ = start_server(names[1:2], env, work, ("--backend", "onnx"))
        fast_url = json.loads((work / "serve-1backendonnx.out").read_text(encoding="utf-8"))["url"]
        fast8, _, _, _ = start_server(names[2:3], env, work, ("--backend", "onnx", "--int8"))
        fast8_url = json.loads((work / "serve-1backendonnxint8.out").read_text(encoding="utf-8"))["url"]
        try:
            with httpx.Client(timeout=120) as client:
                speed = measure(
                    {
                        **variants,
                        "http": http_predict(client, url, names[0]),
                        "http_onnx": http_predict(client, fast_url, names[1]),
                        "http_onnx_int8": http_predict(client, fast8_url, names[2]),
                    },
                    args.requests,
                    args.batches,
                )
                swap = hot_swap(
                    client,
                    fast_url,
                    names[1],
                    lambda: (
                        trainer.register(adapter_dir, names[1], reason="benchmark swap"),
                        approver.promote(names[1], "v2", "production", reason="benchmark swap"),
                    ),
                )
            after_rss = rss_mb(proc.pid)
        finally:
            for server in (proc, fast, fast8):
                stop_server(server)
        one = {
            "ready_s": ready_s,
            "startup_seconds": record["startup_seconds"],
            "rss_at_start_mb": record["rss_mb"],
            "rss_after_requests_mb": after_rss,
        }
        proc, url, ready_s, record = start_server(names, env, work)
        stop_server(proc)
        four = {"ready_s": ready_s, "startup_seconds": record["startup_seconds"], "rss_at_start_mb": record["rss_mb"]}

    bare = speed["bare_base"]
    results.update(
        speed=speed,
        memory=memory,
        server_one_adapter=one,
        server_four_adapters=four,
        # Compared at start-up, before any request: traffic grows the allocator's pools differently.
        rss_per_extra_adapter_mb=round((four["rss_at_start_mb"] - one["rss_at_start_mb"]) / 3, 1),
        onnx_hot_swap=swap,
        ratios_vs_bare_base={
            name: {
                "p50": round(r["p50_ms"] / bare["p50_ms"], 2),
                "p95": round(r["p95_ms"] / bare["p95_ms"], 2),
                "batch32_throughput": round(r["batch32_texts_per_s"] / bare["batch32_texts_per_s"], 2),
            }
            for name, r in speed.items()
        },
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))

    labels = {
        "bare_base": "bare base model (in-process)",
        "unmerged": "adapter unmerged (in-process, as served)",
        "merged": "adapter merged (in-process)",
        "http": "HTTP `tailor serve` (unmerged)",
        "http_onnx": "HTTP `tailor serve --backend onnx`",
        "http_onnx_int8": "HTTP `tailor serve --backend onnx --int8`",
    }
    print("| variant | p50 ms | p95 ms | batch-32 texts/s | p50 / bare | p95 / bare | throughput / bare |")
    print("|---|---|---|---|---|---|---|")
    for name, r in speed.items():
        ratio = results["ratios_vs_bare_base"][name]
        print(
            f"| {labels[name]} | {r['p50_ms']} | {r['p95_ms']} | {r['batch32_texts_per_s']} | {ratio['p50']} | "
            f"{ratio['p95']} | {ratio['batch32_throughput']} |"
        )
    print(
        f"hot swap on the onnx server: {swap['requests']} requests while v2 was promoted, {swap['failed']} failed, "
        f"answered by {swap['versions']}"
    )
    print(
        f"\nserve start-up (process start to models loaded): {one['startup_seconds']} s with 1 adapter, "
        f"{four['startup_seconds']} s with 4; RSS at start {one['rss_at_start_mb']} MB with 1, "
        f"{four['rss_at_start_mb']} MB with 4 -> {results['rss_per_extra_adapter_mb']} MB per extra adapter; "
        f"{one['rss_after_requests_mb']} MB after the benchmark's requests"
    )
    for name in ("unmerged", "merged"):
        print(
            f"{name} adapter beside the loaded base: {memory[name]['own_parameters_mb']} MB of its own "
            f"parameters, RSS +{memory[name]['extra_rss_mb']} MB"
        )
    print(f"machine: {os.cpu_count()} CPUs, load average {results['machine']['load_average_at_start']:.1f} at start")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
