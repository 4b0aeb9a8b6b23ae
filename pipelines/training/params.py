"""Training parameters: typed, checked on creation, read from the ``train:`` section of params.yaml.

The defaults here are the measured ones (bench/train.py); params.yaml repeats them with the
trade-offs so DVC can track changes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from pipelines import defaults, typed_files
from registry.errors import ConfigError
from registry.files import require_file

WORKING_PARAMS_FILE = Path("params.yaml")
MAX_SEED = 2**32 - 1  # numpy and scikit-learn take unsigned 32-bit seeds


class TrainParams(typed_files.YamlRecord):
    lora_r: int = Field(8, ge=1, description="LoRA rank")
    lora_alpha: float = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_targets: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, min_length=1, description="linear layers of a block to adapt; None: all of them, as the family names them"
    )
    lora_layers: int | None = Field(
        None,
        ge=1,
        description="adapt only the upper N blocks; the lower ones run once, cached; None: a third of the depth",
    )
    lr: float = Field(5e-3, gt=0, description="peak learning rate of the LoRA weights")
    head_lr: float = Field(2e-3, gt=0, description="peak learning rate of the classifier head")
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(32, ge=1)
    epochs: float = Field(4.0, gt=0, description="budget in passes over the data, turned into optimiser steps")
    min_steps: int = Field(30, ge=1)
    max_steps: int = Field(300, ge=1)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    max_length: int = Field(64, ge=8, le=512, description="tokens kept per text")
    head_C: float = Field(
        10.0, gt=0, description="inverse regularisation of the logistic-regression probe the head starts from"
    )
    loss: Literal["gce", "ce"] = Field(
        "gce", description="gce: generalized cross-entropy, robust to wrong labels; ce: cross-entropy"
    )
    gce_q: float = Field(
        0.7, gt=0, le=1, description="gce exponent: 1 = mean absolute error (most robust), towards 0 = cross-entropy"
    )
    noise_filter: Literal["auto", "cleanlab", "none"] = Field(
        "auto",
        description="cleanlab: always act on flagged rows (noise_action); auto: only when at least "
        "noise_auto_fraction are flagged, and more than a clean batch of that size shows by chance "
        "(noise_auto_clean_rate)",
    )
    noise_filter_by: Literal["both", "prune_by_noise_rate", "prune_by_class", "confident_learning"] = Field(
        "both", description="cleanlab's find_label_issues filter_by"
    )
    noise_action: Literal["weight", "margin", "drop"] = Field(
        "margin",
        description="what a noisy batch gets: margin: every row weighted by its margin to its class mates; "
        "weight: flagged rows weighted by p(label)^noise_weight_power; drop: flagged rows left out",
    )
    noise_margin_temperature: float = Field(
        0.2, gt=0, description="with noise_action margin: weight = sigmoid(margin / this); lower is closer to a cut"
    )
    noise_weight_power: float = Field(
        0.25, gt=0, description="with noise_action weight: lower keeps flagged rows stronger"
    )
    noise_auto_fraction: float = Field(
        0.1, ge=0, le=1, description="flagged share below which auto leaves the batch alone (see noise_auto_clean_rate)"
    )
    noise_auto_clean_rate: float = Field(
        0.05,
        ge=0,
        lt=1,
        description="share of a clean batch's rows confident learning flags anyway: auto acts only on more flagged "
        "rows than a clean batch of the same size shows by chance (pipelines/training/noise_gate.py)",
    )
    min_per_class: int = Field(2, ge=2, description="fewest examples a class may have")
    select: Literal["auto", "lora", "probe", "contrastive"] = Field(
        "auto",
        description="auto: keep the fine-tuned adapter or the frozen probe, whichever scores higher out of "
        "fold on the batch (a small batch's kept probe may get the contrastive step: see contrastive); lora / probe / "
        "contrastive: always that one",
    )
    select_folds: int = Field(4, ge=2, description="folds of the out-of-fold estimate (fewer when a class is smaller)")
    select_cost: float = Field(
        0.3, ge=0, description="fold training budget, as a share of the rows the final run visits"
    )
    select_min_visits: int = Field(3000, ge=0, description="... but at least this many rows visited (tiny batches)")
    select_z: float = Field(
        1.645,
        ge=0,
        description="the default recipe is replaced only when the other leads it out of "
        "fold by more than one row plus this many standard errors of the "
        "paired difference (McNemar, continuity-corrected; 1.645: one-sided 5 %)",
    )
    select_large_rows: int = Field(
        300,
        ge=1,
        description="from this many rows, fine-tuning is the default and the probe "
        "must lead beyond the noise; below, the reverse",
    )
    select_large_classes: int = Field(20, ge=2, description="... or from this many classes")
    contrastive: bool = Field(
        False,
        description="where select auto keeps the probe of a small batch the label-noise filter left alone, first "
        "adapt the encoder's features on pairs of rows (same label pulled together, different apart) and refit the "
        "probe on them; false (the default, as it lost to the probe on most tasks it was not tuned on): the probe "
        "itself",
    )
    contrastive_max_classes: int = Field(
        2,
        ge=2,
        description="the contrastive step (when on) runs on batches of at most this many classes (it lost to the "
        "probe on three and five topics, and on most two-class tasks it was not tuned on)",
    )
    contrastive_layers: int | None = Field(
        None, ge=1, description="upper blocks the contrastive step adapts; None: every block"
    )
    contrastive_lr: float = Field(4e-3, gt=0, description="peak learning rate of the contrastive step's LoRA weights")
    contrastive_pairs_per_row: float = Field(
        25, gt=0, description="pairs each row takes part in over the contrastive step (sets its steps)"
    )
    contrastive_batch_size: int = Field(16, ge=2, description="rows per contrastive step; all their pairs count")

    @model_validator(mode="after")
    def _steps_ordered(self) -> "TrainParams":
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must not exceed max_steps ({self.max_steps})")
        return self

    def steps_for(self, examples: int) -> int:
        """Optimiser steps for a data set: ``epochs`` passes, clamped to [min_steps, max_steps].

        Steps, not epochs, because tiny data sets would otherwise get a handful of updates
        (the under-training that makes plain LoRA lose) and large ones far more than they need.
        """
        return max(self.min_steps, min(self.max_steps, math.ceil(self.epochs * examples / self.batch_size)))


def load_params(path: Path | None = None, **overrides: object) -> TrainParams:
    """The ``train:`` section of params.yaml (default ./params.yaml when it exists, else the packaged one).

    Raises:
        NotFoundError: an explicit ``path`` does not exist or is not a regular file.
        ConfigError: invalid YAML, unknown keys or out-of-range values (every problem named), training parameters
            outside the ``train:`` section, or an explicit ``path`` without one.
    """
    if path is not None:
        source = require_file(Path(path), "params file")
    else:
        source = WORKING_PARAMS_FILE if WORKING_PARAMS_FILE.is_file() else defaults.PARAMS
    try:
        document = typed_files.safe_load(source.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"{source} is not valid YAML: {typed_files.one_line(err)}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping with a 'train:' section")
    # Nothing reads a parameter written at the top level: training would run on the defaults without a word. Checked
    # before the section itself, so that a 'train:' whose lines lost their indent is named for what happened.
    stray = sorted(str(key) for key in document if key in TrainParams.model_fields)
    if stray:
        raise ConfigError(
            f"{source}: training parameters outside the 'train:' section, where nothing reads them: "
            f"{', '.join(stray)}; indent them under 'train:'"
        )
    if path is not None and "train" not in document:
        raise ConfigError(f"{source}: no 'train:' section; training parameters go under it, as in params.yaml")
    section = document.get("train")
    if section is None:  # an empty 'train:', every line under it commented out: the defaults
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(
            f"{source}: 'train:' holds {section!r}, not parameters; write each as 'name: value' on a line of its own, "
            "indented under it"
        )
    values = dict(section)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return TrainParams(**values)
    except ValidationError as err:
        raise ConfigError(
            f"{source} train parameters invalid: " + typed_files.validation_problems(err, root="train")
        ) from None
