"""Operating-load check: what serving this adapter costs, relative to the bare base model.

Measured in a fresh interpreter (``serving_probe``) so that memory and load time are a serving
process's, not the evaluator's (which also holds Evidently, scikit-learn and a second model).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from pipelines.evaluation.checks.report import finish
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
        cmd = [
            sys.executable,
            "-m",
            "pipelines.evaluation.checks.serving_probe",
            str(adapter_dir),
            str(base_model_dir),
            str(texts_file),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise TailorError(f"the serving probe did not finish within {PROBE_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        raise TailorError(f"the serving probe failed (exit {proc.returncode}): {proc.stderr.strip()[-800:]}")
    measured = json.loads(proc.stdout.strip().splitlines()[-1])
    measured["adapter_mb"] = adapter_mb(adapter_dir)
    return measured


def run(
    measured: dict[str, float], policy: LoadPolicy, *, out_dir: Path | None = None, host: str | None = None
) -> CheckResult:
    """Judge the candidate against the bare base timed beside it, and its memory, under the ``load`` section.

    The bare base's spread comes first: above ``load.max_base_spread`` the gate calls the check not
    judged (machine too busy) instead of reading the ratios. ``load.max_p95_ms`` is judged only on
    ``load.reference_host`` (``host`` defaults to this machine's name).
    """
    host = host or socket.gethostname()
    thresholds = [
        Threshold.judge("base_spread", "load.max_base_spread", measured["base_spread"], "<=", policy.max_base_spread),
        Threshold.judge("p95_ratio", "load.max_p95_ratio", measured["p95_ratio"], "<=", policy.max_p95_ratio),
        Threshold.judge(
            "throughput_ratio",
            "load.min_throughput_ratio",
            measured["throughput_ratio"],
            ">=",
            policy.min_throughput_ratio,
        ),
        Threshold.judge("rss_mb", "load.max_rss_mb", measured["rss_mb"], "<=", policy.max_rss_mb),
        Threshold.judge("adapter_mb", "load.max_adapter_mb", measured["adapter_mb"], "<=", policy.max_adapter_mb),
    ]
    absolute = policy.max_p95_ms is not None and policy.reference_host == host
    if absolute:
        thresholds.append(Threshold.judge("p95_ms", "load.max_p95_ms", measured["p95_ms"], "<=", policy.max_p95_ms))
    details = {
        **measured,
        "host": host,
        "absolute_limits": (
            "judged: this is the reference host"
            if absolute
            else f"not judged: reference host {policy.reference_host or '(none named)'}, measured on {host}"
        ),
        "summary": (
            f"against the bare base: p50 {measured['p50_ratio']:.2f}x, p95 {measured['p95_ratio']:.2f}x, "
            f"throughput {measured['throughput_ratio']:.2f}x (p95 {measured['p95_ms']:.1f} ms vs "
            f"{measured['base_p95_ms']:.1f} ms at batch 1; bare base spread p95/p50 "
            f"{measured['base_spread']:.2f}; load average {measured['load_average_before']:.1f} on "
            f"{measured['cpu_count']:.0f} cores, probe at nice {measured.get('niceness', 0):.0f}); serving RSS {measured['rss_mb']:.0f} MB; adapter "
            f"{measured['adapter_mb']:.2f} MB"
        ),
    }
    return finish(NAME, thresholds, details, out_dir=out_dir)
