"""Operating-load check: what serving this adapter costs on this machine.

Measured in a fresh interpreter (``serving_probe``) so that memory and load time are a serving
process's, not the evaluator's (which also holds Evidently, scikit-learn and a second model).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.checks.report import finish
from pipelines.policy import LoadPolicy
from pipelines.records import CheckResult, Threshold
from registry.errors import TailorError

NAME = "load"
PROBE_TIMEOUT_S = 300


def adapter_mb(adapter_dir: Path) -> float:
    """Size of the adapter's weights (every safetensors file in its folder): what serving must load per adapter."""
    return sum(p.stat().st_size for p in Path(adapter_dir).glob("*.safetensors")) / 2**20


def measure(adapter_dir: Path, base_model_dir: Path, texts: list[str]) -> dict[str, float]:
    """Run the serving probe in a fresh interpreter and return what it measured (plus ``adapter_mb``).

    Raises:
        TailorError: the probe failed or timed out (its stderr tail is in the message).
    """
    if not texts:
        raise TailorError("the load check needs at least one text to send")
    with tempfile.TemporaryDirectory(prefix="tailor-load-") as tmp:
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts))
        cmd = [sys.executable, "-m", "pipelines.checks.serving_probe", str(adapter_dir), str(base_model_dir),
               str(texts_file)]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TailorError(f"the serving probe did not finish within {PROBE_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        raise TailorError(f"the serving probe failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    measured["adapter_mb"] = adapter_mb(adapter_dir)
    return measured


def run(measured: dict[str, float], policy: LoadPolicy, *, out_dir: Path | None = None) -> CheckResult:
    """Judge p95 latency at batch 1, serving RSS and adapter size against the ``load`` section."""
    thresholds = [
        Threshold.judge("p95_ms", "load.max_p95_ms", measured["p95_ms"], "<=", policy.max_p95_ms),
        Threshold.judge("rss_mb", "load.max_rss_mb", measured["rss_mb"], "<=", policy.max_rss_mb),
        Threshold.judge("adapter_mb", "load.max_adapter_mb", measured["adapter_mb"], "<=", policy.max_adapter_mb),
    ]
    details = {
        **measured,
        "summary": (f"p50 {measured['p50_ms']:.1f} ms, p95 {measured['p95_ms']:.1f} ms at batch 1; "
                    f"{measured['throughput_per_s']:.0f}/s at batch {measured['throughput_batch']}; load "
                    f"{measured['load_seconds']:.1f} s; serving RSS {measured['rss_mb']:.0f} MB; adapter "
                    f"{measured['adapter_mb']:.2f} MB"),
    }  # fmt: skip
    return finish(NAME, thresholds, details, out_dir=out_dir)
