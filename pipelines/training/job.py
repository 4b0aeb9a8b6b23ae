"""The flow's training step as a background job: trained in a child process at the training share.

The flow's own process evaluates next (and `tailor watch` takes the next batch): lowered, its load
probe would time a background job and every later batch would run niced for good.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pipelines.policy import Policy
from pipelines.records import TrainResult
from pipelines.settings import Settings
from pipelines.training.cpu_share import run_in_share, start_workers
from registry.adapter_folder import TRAIN_RESULT_FILE


@dataclass(frozen=True)
class TrainSetup:
    """What a training child takes from the run's settings and policy: plain values, no credentials, picklable."""

    base_model_dir: Path
    base_model_id: str
    cache_dir: Path
    niceness: int
    threads: int
    cost_per_hour_cpu: float
    cost_per_hour_gpu: float
    currency: str
    max_batch_bytes: int

    @classmethod
    def of(cls, settings: Settings, policy: Policy) -> "TrainSetup":
        return cls(
            settings.base_model_dir,
            settings.model_id_of(None),
            settings.home,
            settings.train_niceness,
            settings.train_threads,
            settings.cost_per_hour_cpu,
            settings.cost_per_hour_gpu,
            settings.cost_currency,
            policy.data.max_file_bytes,
        )


def warm_up() -> None:
    """Have the training modules imported, in the background, before the first training child needs them."""
    start_workers(["pipelines.training.preload", *_main_module()])


def _main_module() -> list[str]:
    """The module this process was started as (``python -m NAME``, ``tailor``'s ``pipelines.cli.main``), which
    every training child runs again as ``__mp_main__`` (multiprocessing's spawn preparation): imported by the
    fork server, its imports are done once. A package's ``__main__`` is not run again, nor a script's name known."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if name and name != "__main__" and not name.endswith(".__main__"):
        return [name]
    # The `tailor` console script is a file whose one import is the CLI's.
    return ["pipelines.cli.main"] if "pipelines.cli.main" in sys.modules else []


def train_in_background(
    setup: TrainSetup, batch: Path, out_dir: Path, data_version: str | None, device: str, encoding: str | None = None
) -> TrainResult:
    """Train an adapter of ``setup``'s base on ``batch`` (read as ``encoding``, None: UTF-8) into ``out_dir``
    in a child process; its result as written.

    Raises:
        TrainingProcessError: training failed in the child (its error's type and message).
    """
    run_in_share(
        _train,
        setup,
        batch,
        out_dir,
        data_version,
        device,
        encoding,
        niceness=setup.niceness,
        threads_setting=setup.threads,
    )
    return TrainResult.read_json(Path(out_dir) / TRAIN_RESULT_FILE)


def _train(
    setup: TrainSetup, batch: Path, out_dir: Path, data_version: str | None, device: str, encoding: str | None
) -> None:
    from pipelines.batches.read import read_batch
    from pipelines.training.params import load_params
    from pipelines.training.recipe import Pricing, train
    from serving.model import load_base

    base = load_base(setup.base_model_dir, device=device, model_id=setup.base_model_id, cache_dir=setup.cache_dir)
    rate = setup.cost_per_hour_gpu if base.device == "cuda" else setup.cost_per_hour_cpu
    train(
        read_batch(batch, max_bytes=setup.max_batch_bytes, encoding=encoding),
        out_dir,
        base=base,
        params=load_params(),
        pricing=Pricing(rate, setup.currency),
        data_version=data_version,
    )
