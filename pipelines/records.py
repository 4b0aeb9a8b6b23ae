"""The typed records handed from step to step.

data → validate → train → evaluate → gate → registry:
``LabeledBatch → ValidationReport → TrainResult → [CheckResult…] → GateDecision`` (then the
registry's own ``Manifest``). Pydantic models so that every record round-trips through JSON files
(reports, DVC outputs) without hand-written (de)serialisation.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def write_json(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2))
        return path

    @classmethod
    def read_json(cls, path: Path):
        return cls.model_validate_json(Path(path).read_text())


class LabeledBatch(Record):
    """A parsed labeled batch: one entry per row, in file order."""

    source: str
    texts: list[str]
    labels: list[str]
    groups: list[str] | None = None
    ids: list[str]

    def __len__(self) -> int:
        return len(self.texts)


class ExpectationFailure(Record):
    """One failed expectation, with the evidence a reviewer needs."""

    name: str
    why: str
    count: int = 0
    examples: list[str] = Field(default_factory=list)


class NoiseAudit(Record):
    """Confident-learning estimate of label noise (cleanlab on frozen-embedding probabilities)."""

    estimated_rate: float
    flagged: int
    max_rate: float
    review_file: str | None = None


class ValidationReport(Record):
    batch: str
    rows: int
    accepted: bool
    labels: list[str] = Field(default_factory=list)
    failures: list[ExpectationFailure] = Field(default_factory=list)
    noise: NoiseAudit | None = None
    data_version: str | None = None  # DVC md5 of the accepted batch
    report_json: str | None = None
    report_html: str | None = None
    quarantined_to: str | None = None
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


class TrainResult(Record):
    adapter_dir: str
    base_model_id: str
    base_model_sha256: str
    labels: list[str]
    params: dict[str, Any]
    seed: int
    device: str
    train_examples: int
    data_version: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    cost: CostReport
    adapter_sha256: str
    created_at: datetime = Field(default_factory=utcnow)


class CheckResult(Record):
    """Every check has this shape; the gate loops over them."""

    name: str
    passed: bool
    value: float | None = None
    limit: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)


class GateFailure(Record):
    check: str
    metric: str
    value: float | str | None
    limit: float | str | None
    comparison: str  # e.g. ">=", "<=": the relation that should have held
    evidence: list[str] = Field(default_factory=list)


class GateDecision(Record):
    passed: bool
    policy_sha256: str
    policy_version: str
    failures: list[GateFailure] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    decided_at: datetime = Field(default_factory=utcnow)
