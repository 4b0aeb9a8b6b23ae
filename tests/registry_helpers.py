"""Helpers for registry tests: PEFT adapter folders built without training, and parallel CLI runs.

The weights are a tiny real safetensors file; ``tailor_adapter.json`` carries the base model
fingerprint the test passes in (the real one in integration tests).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from registry.fingerprint import BaseModelFingerprint
from tests.conftest import REPO, TAILOR

LABELS = ["billing", "bug", "feature", "other"]


def make_adapter_folder(
    path: Path, base: BaseModelFingerprint, *, seed: int = 0, weights_floats: int = 64, gate: dict | None = None
) -> Path:
    """Write an adapter folder at ``path``; ``seed`` makes the weights (and so the hashes) differ."""
    path = Path(path)
    (path / "reports").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file(
        {
            "base_model.model.encoder.layer.0.attention.self.query.lora_A.weight": rng.standard_normal(weights_floats)
            .astype(np.float32)
            .reshape(-1, 8)
        },
        str(path / "adapter_model.safetensors"),
    )
    (path / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "r": 8,
                "lora_alpha": 16,
                "target_modules": ["value", "query"],
                "modules_to_save": ["classifier"],
                "task_type": "SEQ_CLS",
                "base_model_name_or_path": "/somewhere/local/all-MiniLM-L6-v2",
            }
        )
    )
    (path / "tailor_adapter.json").write_text(
        json.dumps(
            {
                "format": 1,
                "base_model_id": base.model_id,
                "base_model_weights_sha256": base.weights_sha256,
                "base_model_tokenizer_sha256": base.tokenizer_sha256,
                "labels": LABELS,
                "max_length": 128,
                "intended_use": "Route support tickets to a queue; not for decisions about people.",
            }
        )
    )
    (path / "train_result.json").write_text(
        json.dumps(
            {
                "data_version": f"md5-{seed:04d}",
                "metrics": {"macro_f1": 0.9, "accuracy": 0.92},
                "cost": {"wall_seconds": 12.5, "money": 0.01, "currency": "EUR"},
            }
        )
    )
    (path / "reference.csv").write_text("text,label\nmy card was charged twice,billing\n")
    (path / "reports" / "validation.json").write_text(json.dumps({"accepted": True, "rows": 1}))
    if gate is not None:
        (path / "gate_decision.json").write_text(json.dumps(gate))
    return path


def failed_gate() -> dict:
    return {
        "passed": False,
        "policy_sha256": "a" * 64,
        "policy_version": "1",
        "failures": [
            {
                "check": "quality",
                "metric": "macro_f1",
                "value": 0.6100000001,
                "limit": 0.8,
                "comparison": ">=",
                "policy_key": "quality.min_macro_f1",
            }
        ],
    }


def passed_gate(against: str | None = None, policy_sha256: str = "a" * 64) -> dict:
    return {"passed": True, "policy_sha256": policy_sha256, "policy_version": "1", "failures": [], "against": against}


def run_cli_parallel(
    commands: list[tuple[list[str], dict[str, str]]], timeout: float = 120
) -> list[subprocess.CompletedProcess]:
    """Run several `tailor` commands at once (each process costs ~1-2 s of start-up, so overlap them)."""
    procs = [
        subprocess.Popen([TAILOR, *args], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args, env in commands
    ]
    results = []
    for proc, (args, _) in zip(procs, commands):
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess([TAILOR, *args], proc.returncode, out, err))
    return results
