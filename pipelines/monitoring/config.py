"""The monitoring file (monitoring.yaml): what live traffic is recorded, how long it is kept, and the
limits whose crossing the monitor announces.

Kept apart from the promotion policy on purpose: every gate decision records the policy's sha256,
so an alert limit changed there would make every pending gate decision stale.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, PositiveFloat, PositiveInt, ValidationError

from pipelines import typed_files as yaml_file
from pipelines.typed_files import validation_problems
from registry.errors import ConfigError
from serving.traffic import RecordingLimits

DEFAULT_MONITORING = Path(__file__).resolve().parents[2] / "monitoring.yaml"


class RecordingSection(yaml_file.YamlRecord):
    sample_rate: float = Field(1.0, ge=0.0, le=1.0)
    max_rows_per_second: PositiveFloat = 50.0
    max_batch_rows: PositiveInt = 500
    max_batch_seconds: PositiveFloat = 60.0
    max_queue_rows: PositiveInt = 10_000
    hash_texts: bool = False
    retention_days: PositiveInt = 90

    def limits(self) -> RecordingLimits:
        return RecordingLimits(**self.model_dump(exclude={"retention_days"}))


class AlertSection(yaml_file.YamlRecord):
    max_drifted_share: float = Field(0.5, ge=0.0, le=1.0)
    max_label_shift: float = Field(0.3, ge=0.0, le=1.0)
    max_confidence_drop: float = Field(0.15, ge=0.0, le=1.0)
    min_rows: int = Field(30, ge=2)


class Monitoring(yaml_file.YamlRecord):
    recording: RecordingSection = RecordingSection()
    alerts: AlertSection = AlertSection()


def load_monitoring(path: Path | None = None) -> Monitoring:
    """Read and check a monitoring file.

    Raises:
        ConfigError: the file is missing or not YAML, or a key is unknown, mistyped or out of range
            (every problem listed, each naming its key, e.g. ``alerts.max_label_shift``).
    """
    path = Path(path) if path else DEFAULT_MONITORING
    _, doc = yaml_file.read_sections(path, "monitoring file")
    try:
        return Monitoring.model_validate(doc)
    except ValidationError as err:
        raise ConfigError(f"monitoring file {path}: " + validation_problems(err)) from None
