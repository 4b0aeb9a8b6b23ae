"""A version's evidence as the console and the report show it, read (hash-checked) from the registry.

The check reports a version carries (``reports/<check>.json``, written by `tailor evaluate`) are
read as they are; a version registered without one simply has that section empty.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from registry.explanations import ExplanationsReport
from registry.explanations import render_report as render_explanations
from registry.gate_record import latest_gate
from registry.gate_summary import GateSummary
from registry.model_card import CARD_FILE, ModelCard, parse_card
from registry.registry import Registry
from registry.report import ReportInputs, gather

NOISE_FILE = "reports/validation/noise_review.csv"
DRIFT_HTML = "reports/drift.html"
NOISE_ROWS = 20


@dataclass(frozen=True)
class Interval:
    label: str
    point: float
    low: float
    high: float


@dataclass(frozen=True)
class Evidence:
    inputs: ReportInputs
    gate: GateSummary | None
    card: ModelCard
    quality: dict[str, Any] | None
    against_production: Interval | None
    baselines: list[Interval]
    per_class_f1: list[tuple[str, float]]
    confusion: list[list[int]]
    drift: dict[str, Any] | None
    has_drift_report: bool
    bias: dict[str, Any] | None
    noise: list[dict[str, str]]
    cost: dict[str, Any]
    load: dict[str, Any] | None
    failures: list[str] = field(default_factory=list)
    explanations: Markup | None = None  # reports/explanations.json as highlighted, escaped text


def _details(evidence: dict[str, Any], check: str) -> dict[str, Any] | None:
    report = evidence.get(f"reports/{check}.json")
    details = report.get("details") if isinstance(report, dict) else None
    return details if isinstance(details, dict) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _interval(label: str, comparison: Any) -> Interval | None:
    if not isinstance(comparison, dict):
        return None
    point, low, high = (_number(comparison.get(k)) for k in ("diff", "diff_ci_low", "diff_ci_high"))
    return Interval(label, point, low, high) if None not in (point, low, high) else None  # type: ignore[arg-type]


def _card(inputs: ReportInputs) -> ModelCard:
    """The trainer's model card (checked at register), else the intended use the adapter states."""
    try:
        return parse_card(inputs.evidence.get(CARD_FILE))
    except ValueError:  # a version registered without a card
        return ModelCard(intended_use=inputs.manifest.intended_use or "")


def _noise(registry: Registry, inputs: ReportInputs) -> list[dict[str, str]]:
    """The noise review's most suspect rows (it lists them most suspect first)."""
    if NOISE_FILE not in inputs.manifest.files:
        return []
    for _, data in registry.verified_files(inputs.manifest, only={NOISE_FILE}):
        rows = csv.DictReader(io.StringIO(data.decode("utf-8-sig", errors="replace")))
        return [{k: (v or "") for k, v in row.items() if isinstance(k, str)} for row, _ in zip(rows, range(NOISE_ROWS))]
    return []


def read_evidence(registry: Registry, name: str, version: str) -> Evidence:
    """Everything an approver weighs for ``name`` ``version``.

    Raises:
        NotFoundError: no such version.
        IntegrityError: a stored file, the manifest or the audit chain does not match its hashes.
    """
    inputs = gather(registry, name, version)
    return evidence_of(inputs, _noise(registry, inputs))


def evidence_of(inputs: ReportInputs, noise: list[dict[str, str]]) -> Evidence:
    """The evidence in ``inputs`` (already read and hash-checked), sorted into what the pages show."""
    quality = _details(inputs.evidence, "quality")
    per_class, confusion = [], []
    baselines: list[Interval] = []
    against = None
    if quality:
        per_class = [
            (str(row.get("label")), f1)
            for row in quality.get("per_class") or []
            if isinstance(row, dict) and (f1 := _number(row.get("f1"))) is not None
        ]
        matrix = quality.get("confusion")
        if isinstance(matrix, list) and all(isinstance(r, list) for r in matrix):
            confusion = [[int(v) if _number(v) is not None else 0 for v in r] for r in matrix]
        production = quality.get("production")
        against = _interval(str(production.get("ref")) if isinstance(production, dict) else "", production)
        for kind, comparison in sorted((quality.get("baselines") or {}).items()):
            if (found := _interval(str(kind), comparison)) is not None:
                baselines.append(found)
    gate = latest_gate(inputs.trail, inputs.manifest)
    return Evidence(
        inputs=inputs,
        gate=gate,
        card=_card(inputs),
        quality=quality,
        against_production=against,
        baselines=baselines,
        per_class_f1=per_class,
        confusion=confusion,
        drift=_details(inputs.evidence, "drift"),
        has_drift_report=DRIFT_HTML in inputs.manifest.files,
        bias=_details(inputs.evidence, "bias"),
        noise=noise,
        cost=_details(inputs.evidence, "cost") or dict(inputs.manifest.cost or {}),
        load=_details(inputs.evidence, "load"),
        failures=list(gate.failures + gate.not_judged) if gate else [],
        explanations=_explanations(inputs.explanations),
    )


def _explanations(explanations: ExplanationsReport | str | None) -> Markup | None:
    """The stored explanations rendered (every text escaped there), or why they cannot be shown."""
    if explanations is None:
        return None
    if isinstance(explanations, str):
        return Markup("<p class=fail>{}</p>").format(explanations)
    return Markup(render_explanations(explanations))
