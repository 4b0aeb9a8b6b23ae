"""The flow's training step as a background job: trained in a child process at the training share.

The flow's own process evaluates next (and `tailor watch` takes the next batch): lowered, its load
probe would time a background job and every later batch would run niced for good.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.config import load_settings
from pipelines.cpu_share import run_in_share
from pipelines.records import TrainResult
from registry.adapter_folder import TRAIN_RESULT_FILE


def train_in_background(batch: Path, out_dir: Path, data_version: str | None, device: str,
                        encoding: str | None = None) -> TrainResult:  # fmt: skip
    """Train the configured adapter on ``batch`` (read as ``encoding``, None: UTF-8) into ``out_dir`` in a
    child process; its result as written.

    Raises:
        TrainingProcessError: training failed in the child (its error's type and message).
    """
    settings = load_settings()
    run_in_share(_train, batch, out_dir, data_version, device, encoding, niceness=settings.train_niceness,
                 threads_setting=settings.train_threads)  # fmt: skip
    return TrainResult.read_json(Path(out_dir) / TRAIN_RESULT_FILE)


def _train(batch: Path, out_dir: Path, data_version: str | None, device: str, encoding: str | None) -> None:
    from pipelines.batch_io import read_batch
    from pipelines.model import load_base
    from pipelines.train import Pricing, train
    from pipelines.train_params import load_params

    settings = load_settings()
    base = load_base(settings.base_model_dir, device=device, model_id=settings.model_id_of(None))
    rate = settings.cost_per_hour_gpu if base.device == "cuda" else settings.cost_per_hour_cpu
    train(read_batch(batch, encoding=encoding), out_dir, base=base, params=load_params(),
          pricing=Pricing(rate, settings.cost_currency), data_version=data_version)  # fmt: skip
