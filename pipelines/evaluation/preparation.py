"""What the evaluate step needs that does not depend on the candidate, made ready while the candidate trains.

The training child runs on every core but one (``pipelines.training.cpu_share``), so the flow's process
has a core to itself while it waits: it imports the evaluation stack (Evidently, PEFT, captum: seconds
each), loads the base, embeds the holdout into the process's memo (``serving.embeddings``) and fits the
quality check's baselines on the batch being trained on (``pipelines.evaluation.baselines``). All of it
is a cache: evaluate does the same work itself when the preparation did not run, failed or is stale (a
changed base, or a reference.csv that is not the batch, misses the memo), so its result never depends on it.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from pathlib import Path

from pipelines.policy import Policy
from pipelines.settings import Settings
from pipelines.training.cpu_share import training_threads
from registry.errors import TailorError

log = logging.getLogger(__name__)

# What evaluate imports on its way (the suite's own imports, and those its checks make when they run).
EVALUATION_MODULES = (
    "pipelines.evaluation.checks.suite",
    "peft",
    "evidently",
    "evidently.presets",
    "sklearn.decomposition",
    "sklearn.feature_extraction.text",
    "sklearn.linear_model",
    "captum.attr",
)


def prepare_evaluation(
    holdout: Path, settings: Settings, policy: Policy, batch: Path | None = None, encoding: str | None = None
) -> None:
    """Import, load and embed what evaluating a candidate on ``holdout`` under ``settings`` will need, and
    with ``batch`` (the validated rows the candidate trains on, read in ``encoding``) fit its baselines.

    Never raises: a failure (a holdout that does not read, a base that does not load) is logged, and
    evaluate meets it again and reports it as its own error.
    """
    try:
        _prepare(holdout, settings, policy, batch, encoding)
    except TailorError as err:  # bad input evaluate will name in its own words
        log.info("evaluation not prepared during training (evaluate does it): %s: %s", type(err).__name__, err)
    except Exception as err:  # noqa: BLE001 - only a warm-up: evaluate redoes the work and reports its own error
        log.warning("evaluation not prepared during training (evaluate does it): %s: %s", type(err).__name__, err)


def _prepare(holdout: Path, settings: Settings, policy: Policy, batch: Path | None, encoding: str | None) -> None:
    # The core it runs on is the one the training share leaves to a server on this host: run at the
    # training's priority, so the server keeps it when it needs it (Linux keeps a nice value per thread).
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), max(settings.train_niceness, 0))
    except OSError as err:
        log.info("evaluation is prepared at normal priority: the OS refused nice %d (%s)", settings.train_niceness, err)
    for module in EVALUATION_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # an optional extra (captum): evaluate goes without it as well
            continue
    import torch
    from threadpoolctl import threadpool_limits

    from pipelines.batches.read import read_batch
    from pipelines.evaluation.baselines import predict_baselines
    from pipelines.training.params import load_params
    from serving.embeddings import frozen_embeddings
    from serving.model import load_base

    texts = read_batch(holdout, max_bytes=policy.data.max_file_bytes, encoding_option=None).texts
    base = load_base(settings.base_model_dir, model_id=settings.model_id_of(None), cache_dir=settings.home)
    params = load_params()  # the candidate's: the probe baseline embeds at its max_length, fits at its head_C
    # torch's default thread count is the process's (a thread starting torch work meanwhile would take it):
    # the main thread only waits for the training child meanwhile; put it back after.
    before = torch.get_num_threads()
    torch.set_num_threads(free_cores(settings.train_threads))
    try:
        frozen_embeddings(texts, base, params.max_length)
        if batch is not None:
            trained = read_batch(batch, max_bytes=policy.data.max_file_bytes, encoding=encoding)
            # One BLAS thread, as the noise audit's fits (pipelines/batches/noise_audit.py: 14 s -> 0.6 s at
            # load 5): a second one would spin on the core the training child holds.
            with threadpool_limits(limits=1, user_api="blas"):
                predict_baselines(trained, texts, base, params.max_length, params.head_C)
    finally:
        torch.set_num_threads(before)


def free_cores(train_threads: int) -> int:
    """The cores a training child at the ``train_threads`` setting leaves to this process (at least one)."""
    return max(1, (os.cpu_count() or 1) - training_threads(train_threads))
