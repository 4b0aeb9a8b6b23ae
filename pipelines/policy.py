"""The promotion policy (policy.yaml) as a typed record that checks itself on load."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, ValidationError

from pipelines import defaults, typed_files
from registry.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_POLICY = defaults.POLICY


# Settings the checks measure with: re-judging recorded values under a policy that changes one of
# these would judge measurements that policy never made (dvc.yaml's evaluate stage depends on them).
MEASUREMENT_KEYS = ("quality.confidence", "quality.bootstrap_samples", "drift.min_rows", "bias.min_group_size")


class _Section(typed_files.YamlRecord):
    pass


class DataPolicy(_Section):
    min_examples_per_class: PositiveInt = 8
    max_imbalance_ratio: float = Field(10.0, ge=1.0)
    max_noise_rate: float = Field(0.30, ge=0.0, le=1.0)
    max_file_mb: PositiveFloat = 50.0
    min_text_chars: int = Field(2, ge=0)
    max_text_chars: PositiveInt = 2000
    max_duplicate_share: float = Field(0.0, ge=0.0, le=1.0)
    max_unknown_token_share: float = Field(0.05, ge=0.0, le=1.0)
    min_chars_per_token: float = Field(0.6, ge=0.0)

    @property
    def max_file_bytes(self) -> int:
        """``max_file_mb`` in bytes (1 MB = 1,000,000 bytes): the size limit every batch read applies."""
        return int(self.max_file_mb * 1_000_000)


class QualityPolicy(_Section):
    min_macro_f1: float = Field(0.60, ge=0.0, le=1.0)
    max_regression: float = Field(0.02, ge=0.0, le=1.0)
    max_loss_to_baseline: float = Field(0.0, ge=0.0, le=1.0)
    min_holdout_size: PositiveInt = 30
    min_label_coverage: float = Field(1.0, ge=0.0, le=1.0)
    max_holdout_trained_share: float = Field(0.0, ge=0.0, le=1.0)
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    bootstrap_samples: PositiveInt = 1000


class DriftPolicy(_Section):
    max_drifted_share: float = Field(0.5, ge=0.0, le=1.0)
    # At least 2: the embedding domain classifier is cross-validated on each side's rows.
    min_rows: int = Field(10, ge=2)


class BiasPolicy(_Section):
    max_gap: float = Field(0.25, ge=0.0, le=1.0)
    min_group_size: PositiveInt = 10


class CostPolicy(_Section):
    max_train_seconds: PositiveFloat = 900
    # What max_train_seconds limits: "wall" (the machine occupied) or "cpu" (user + sys of the training
    # process, all its threads), which a busy host stretches far less; it can reach threads x wall.
    train_time: Literal["wall", "cpu"] = "wall"
    max_peak_rss_mb: PositiveFloat = 4096
    max_money: float = Field(1.0, ge=0.0)


class LoadPolicy(_Section):
    """Operating load, judged relative to the bare base model timed beside the candidate in the same run."""

    max_p95_ratio: PositiveFloat = 1.5
    min_throughput_ratio: float = Field(0.5, gt=0.0)
    # Above this bare-base p95/p50 the machine is too busy for any ratio to mean much: the check is
    # "not judged" (judge it again later with `tailor judge-load`), neither passed nor failed.
    max_base_spread: float = Field(3.0, gt=1.0)
    max_rss_mb: PositiveFloat = 2048
    max_adapter_mb: PositiveFloat = 20
    # An absolute p95 only means something on the machine it was chosen for: judged only on the host
    # named here (socket.gethostname()). A policy written before the ratios (max_p95_ms alone) still
    # loads; its absolute limit names no host and is reported, not judged.
    reference_host: str | None = Field(None, min_length=1)
    max_p95_ms: PositiveFloat | None = None


class PromotionPolicy(_Section):
    four_eyes_production: bool = True
    require_gate_decision: bool = True
    auto_promote_staging: bool = True
    auto_promote_production: bool = False


class Policy(_Section):
    version: str = Field(min_length=1)
    data: DataPolicy = DataPolicy()
    quality: QualityPolicy = QualityPolicy()
    drift: DriftPolicy = DriftPolicy()
    bias: BiasPolicy = BiasPolicy()
    cost: CostPolicy = CostPolicy()
    load: LoadPolicy = LoadPolicy()
    promotion: PromotionPolicy = PromotionPolicy()
    # Filled by load_policy from the file's bytes, not read from the file.
    sha256: str = Field("", exclude=True)
    source: str = Field("", exclude=True)

    def measurement_settings(self) -> dict[str, float]:
        """The settings the checks measure with (not limits the gate compares against)."""
        return {key: self.limit(key) for key in MEASUREMENT_KEYS}

    def limit(self, key: str) -> float:
        """The numeric limit at ``section.name`` (e.g. ``load.max_p95_ms``).

        Raises:
            ConfigError: the key names no numeric limit of this policy.
        """
        section_name, _, name = key.partition(".")
        section = getattr(self, section_name, None)
        value = getattr(section, name, None) if isinstance(section, _Section) and name else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"policy has no numeric limit {key!r}")
        return float(value)


def load_policy(path: Path | None = None) -> Policy:
    """Read and check a policy file.

    Raises:
        ConfigError: the file is missing or not YAML, or a key is unknown, mistyped or out of range
            (every problem is listed, each naming its key, e.g. ``quality.min_macro_f1``).
    """
    path = Path(path) if path else DEFAULT_POLICY
    raw, doc = typed_files.read_sections(path, "policy file")
    if "sha256" in doc or "source" in doc:
        raise ConfigError(f"policy file {path}: sha256/source are computed, not set")
    try:
        policy = Policy.model_validate(doc)
    except ValidationError as err:
        raise ConfigError(f"policy file {path}: " + typed_files.validation_problems(err)) from None
    if policy.load.max_p95_ms is not None and policy.load.reference_host is None:
        log.warning(
            "policy file %s: load.max_p95_ms is never judged without load.reference_host (the host it "
            "holds on); the load check judges the ratios to the bare base model instead",
            path,
        )
    return policy.model_copy(update={"sha256": hashlib.sha256(raw).hexdigest(), "source": str(path)})
