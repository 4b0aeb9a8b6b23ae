"""Every check ends the same way: judge its thresholds and keep the result as evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.records import CheckResult, Threshold


def finish(
    name: str,
    thresholds: list[Threshold],
    details: dict[str, Any],
    *,
    out_dir: Path | None,
    evidence: list[str] | None = None,
) -> CheckResult:
    """The judged result; with ``out_dir`` (the adapter folder) also written to ``reports/<name>.json``.

    Evidence paths are relative to ``out_dir`` so they stay valid once the folder is stored in the registry.
    """
    evidence = list(evidence or [])
    if out_dir is not None:
        own = f"reports/{name}.json"
        evidence.insert(0, own)
        CheckResult.judged(name, thresholds, details=details, evidence=evidence).write_json(Path(out_dir) / own)
    return CheckResult.judged(name, thresholds, details=details, evidence=evidence)
