"""The typed records handed from step to step.

data → validate → train → evaluate → gate → registry:
``LabeledBatch → ValidationReport → TrainResult → [CheckResult…] → GateDecision`` (then the
registry's own ``Manifest``). Pydantic models so that every record round-trips through JSON files
(reports, DVC outputs) without hand-written (de)serialisation.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines.typed_files import read_model_json
from registry.files import write_atomic
from registry.gate_summary import failure_line, gate_verdict


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def write_json(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(path, self.model_dump_json(indent=2))

    @classmethod
    def read_json(cls, path: Path):
        """The record in a JSON file this project wrote (see ``read_model_json``)."""
        return read_model_json(cls, path)


def listed(items: list[str], most: int = 10) -> str:
    """Items for a one-line message: the first ``most``, then an ellipsis when there are more."""
    return ", ".join(items[:most]) + (", …" if len(items) > most else "")


class LabeledBatch(Record):
    """A parsed labeled batch: one entry per row, in file order."""

    source: str
    texts: list[str]
    labels: list[str]
    groups: list[str] | None = None
    ids: list[str]
    encoding: str = "utf-8"  # the text encoding the file was read in (Python's codec name)

    def __len__(self) -> int:
        return len(self.texts)

    def blank_rows(self) -> list[int]:
        """Rows with an empty (or whitespace) text or label: nothing to learn from or to score."""
        return [
            i for i, (text, label) in enumerate(zip(self.texts, self.labels)) if not text.strip() or not label.strip()
        ]

    def named(self, rows: list[int], most: int = 10) -> str:
        """Row ids for a message: the first ``most``, then an ellipsis."""
        return listed([self.ids[i] for i in rows], most)


class ExpectationFailure(Record):
    """One failed expectation, with the evidence a reviewer needs."""

    name: str
    why: str
    expectation: str = ""  # the GE expectation class, or "tailor:<check>" for a check GE lacks
    count: int = 0
    examples: list[str] = Field(default_factory=list)


class NoiseAudit(Record):
    """Confident-learning estimate of label noise (cleanlab on frozen-embedding probabilities)."""

    estimated_rate: float | None  # None when the batch is too small to audit (see notes)
    flagged: int
    max_rate: float
    review_file: str | None = None
    audited_rows: int = 0
    folds: int = 0
    notes: list[str] = Field(default_factory=list)


class TokenizerCoverage(Record):
    """The base model's tokenizer measured on a batch (special tokens such as [CLS] left out)."""

    base_model: str
    texts: int
    tokens: int
    unknown_token_share: float  # 0–1: tokens that are the tokenizer's unknown token
    chars_per_token: float
    unknown_characters: list[str] = Field(default_factory=list)  # the commonest ones that became the unknown token


class ValidationReport(Record):
    batch: str
    rows: int
    accepted: bool
    labels: list[str] = Field(default_factory=list)
    failures: list[ExpectationFailure] = Field(default_factory=list)
    noise: NoiseAudit | None = None
    coverage: TokenizerCoverage | None = None  # the base model's tokenizer on the batch
    encoding: str = "utf-8"  # the text encoding the batch was read in (--encoding, Python's codec name)
    data_version: str | None = None  # DVC md5 of the accepted batch
    report_json: str | None = None
    report_html: str | None = None
    quarantined_to: str | None = None
    checked: list[str] = Field(default_factory=list)  # every expectation/check that ran, failed or not
    notes: list[str] = Field(default_factory=list)  # what was skipped and why, DVC tracking notes
    class_counts: dict[str, int] = Field(default_factory=dict)
    policy_sha256: str | None = None
    report_markdown: str | None = None
    review_file: str | None = None  # CSV of suspected mislabels (noise audit)
    tracked_file: str | None = None  # the .dvc file of an accepted batch
    created_at: datetime = Field(default_factory=utcnow)


class CostReport(Record):
    """What a training run cost. GPU fields stay None on CPU."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    gpu_seconds: float | None = None
    peak_gpu_mb: float | None = None
    trainable_params: int
    adapter_bytes: int
    examples_per_second: float
    money: float
    currency: str = "EUR"


class Selection(Record):
    """Which recipe training kept and the out-of-fold estimates that chose it (pipelines/training/select.py)."""

    kept: Literal["lora", "probe", "contrastive"]  # contrastive: the probe, its features first adapted on pairs of rows
    default: Literal["lora", "probe"] | None = None  # kept unless the other one leads beyond the noise
    reason: str
    estimates: dict[str, float]  # recipe -> out-of-fold macro-F1 on the rows held out
    lora_only_right: int = 0  # held-out rows only the fine-tuned model got right (McNemar's b)
    probe_only_right: int = 0  # ... only the probe got right (c)
    rows_needed: float = 0.0  # lead in rows the challenger needed: z * sqrt(b + c) + 1
    folds: int = 0  # folds fine-tuned (of ``folds_planned``; fewer once the outcome is settled)
    folds_planned: int = 0
    fold_steps: int = 0  # optimiser steps of each fold's LoRA run, the full recipe for its rows
    rows_scored: int = 0  # held-out rows the estimates are computed on
    # > 0: the final adapter is the one fold fine-tuned, its head refitted, trained this many steps more on every row
    # (then TrainResult.params["steps"] counts only these; the fold's own are ``fold_steps``)
    continued_steps: int = 0


class TrainResult(Record):
    adapter_dir: str
    base_model_id: str
    base_model_sha256: str
    labels: list[str]
    params: dict[str, Any]
    seed: int
    device: str
    train_examples: int  # rows the step loop trained on (after the label-noise filter)
    dropped_examples: int = 0  # rows the label-noise filter left out as probably mislabelled
    downweighted_examples: int = 0  # rows it kept at a weight below 1 (weight), or below one half (margin)
    noise_handling: str = ""  # what the label-noise filter found and did, in a sentence
    uncached_examples: int = 0  # rows kept past what max_steps × batch_size visits: head's probe only (sum = all rows)
    data_version: str | None = None
    encoding: str = "utf-8"  # the text encoding the training batch was read in
    metrics: dict[str, float] = Field(default_factory=dict)
    cost: CostReport
    adapter_sha256: str
    selection: Selection | None = None  # fine-tuned, the probe or the contrastive step, and the estimates that chose it
    created_at: datetime = Field(default_factory=utcnow)


Comparison = Literal[">=", "<=", ">", "<"]

_HOLDS = {
    ">=": lambda v, lim: v >= lim,
    "<=": lambda v, lim: v <= lim,
    ">": lambda v, lim: v > lim,
    "<": lambda v, lim: v < lim,
}


def holds(value: float | None, comparison: Comparison, limit: float) -> bool:
    """Whether ``value <comparison> limit``; a value that was not measured (None, NaN) never holds."""
    if value is None or value != value:
        return False
    return _HOLDS[comparison](value, limit)


class Threshold(Record):
    """One policy limit applied to one measured value.

    ``policy_key`` names the policy.yaml entry the limit comes from (``load.max_p95_ms``), so the gate can
    re-judge the value against whichever policy it is given and a reviewer knows what to edit.
    """

    metric: str
    policy_key: str
    value: float | None
    limit: float
    comparison: Comparison
    passed: bool

    @classmethod
    def judge(
        cls, metric: str, policy_key: str, value: float | None, comparison: Comparison, limit: float
    ) -> "Threshold":
        return cls(
            metric=metric,
            policy_key=policy_key,
            value=value,
            limit=limit,
            comparison=comparison,
            passed=holds(value, comparison, limit),
        )


class CheckResult(Record):
    """Every check has this shape; the gate loops over them.

    ``value``/``limit`` are the headline (the first threshold); ``thresholds`` holds every limit the check
    applied. A check with no thresholds was reported but not judged (``details`` says why); a check that
    could not run carries ``error`` and always fails the gate.
    """

    name: str
    passed: bool
    value: float | None = None
    limit: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)
    thresholds: list[Threshold] = Field(default_factory=list)
    error: str | None = None

    @classmethod
    def judged(
        cls,
        name: str,
        thresholds: list[Threshold],
        *,
        details: dict[str, Any] | None = None,
        evidence: list[str] | None = None,
    ) -> "CheckResult":
        """A result that passes when every threshold holds."""
        head = thresholds[0] if thresholds else None
        return cls(
            name=name,
            passed=all(t.passed for t in thresholds),
            value=head.value if head else None,
            limit=head.limit if head else None,
            details=details or {},
            evidence=evidence or [],
            thresholds=thresholds,
        )

    @classmethod
    def failed(cls, name: str, error: str, *, details: dict[str, Any] | None = None) -> "CheckResult":
        """A check that could not run: the gate counts it as failed, with ``error`` as the reason."""
        return cls(name=name, passed=False, error=error, details=details or {})


class GateFailure(Record):
    """A limit that did not hold (``policy_key`` and the measured ``value`` against ``limit``), or a check
    that could not be judged as it stands (errored, missing, cut down): no policy key, ``reason`` says why."""

    check: str
    metric: str | None = None
    value: float | None = None
    limit: float | None = None
    comparison: str | None = None  # e.g. ">=", "<=": the relation that should have held
    evidence: list[str] = Field(default_factory=list)
    policy_key: str | None = None
    reason: str = ""  # why, in words: set for every failure, not only errors and missing checks

    @model_validator(mode="before")
    @classmethod
    def _untyped_reason(cls, data: Any) -> Any:
        """Decisions written before 2026-12-06 shaped a reason as the threshold "status == ok"."""
        if isinstance(data, dict) and data.get("policy_key") is None and data.get("metric") == "status":
            return {k: v for k, v in data.items() if k not in ("metric", "value", "limit", "comparison")}
        return data

    def describe(self) -> str:
        return failure_line(
            self.check,
            reason=self.reason,
            metric=self.metric,
            value=self.value,
            limit=self.limit,
            comparison=self.comparison,
            policy_key=self.policy_key,
        )


class GateDecision(Record):
    passed: bool
    policy_sha256: str
    policy_version: str
    failures: list[GateFailure] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    adapter: str | None = None  # the candidate judged (folder or name:version)
    adapter_sha256: str | None = None  # sha256 of the judged adapter_model.safetensors: binds the decision to it
    against: str | None = None  # the production version it was compared with, if any
    measured_under: dict[str, float] | None = None  # the policy's measurement settings when the checks ran
    # Checks whose conditions did not allow a verdict (load on a machine too busy): neither passed nor
    # failed; the version can be judged again later (`tailor judge-load`). Any entry keeps passed False.
    not_judged: list[str] = Field(default_factory=list)
    decided_at: datetime = Field(default_factory=utcnow)

    @property
    def verdict(self) -> str:
        """passed, failed or not judged (see ``registry.gate_summary.gate_verdict``)."""
        return gate_verdict(self.passed, self.failures, self.not_judged)


class RetrainOutcome(Record):
    """What one retrain run did; the CLI prints it and the schedule's state keeps it."""

    name: str
    batch: str
    status: Literal["rejected_data", "rejected_gate", "registered", "promoted"]
    version: str | None = None
    promoted_to: list[str] = Field(default_factory=list)
    validation: ValidationReport
    gate: GateDecision | None = None
    adapter_dir: str | None = None
    notes: list[str] = Field(default_factory=list)
    train_seconds: float | None = None
    total_seconds: float
    finished_at: datetime = Field(default_factory=utcnow)

    @property
    def rejected(self) -> bool:
        return self.status.startswith("rejected")
