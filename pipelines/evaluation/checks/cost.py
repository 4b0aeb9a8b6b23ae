"""Cost check: what training the candidate cost, read from its ``train_result.json`` (a TrainResult)."""

from __future__ import annotations

from pathlib import Path

from pipelines.evaluation.checks.report import finish
from pipelines.policy import CostPolicy
from pipelines.records import CheckResult, Threshold, TrainResult
from registry.adapter_folder import TRAIN_RESULT_FILE
from registry.errors import NotFoundError

NAME = "cost"


def read_train_result(adapter_dir: Path) -> TrainResult:
    """The TrainResult stored in the adapter folder.

    Raises:
        NotFoundError: the folder has no train_result.json.
        ConfigError: the file is not a valid TrainResult.
    """
    path = Path(adapter_dir) / TRAIN_RESULT_FILE
    if not path.is_file():
        raise NotFoundError(f"{adapter_dir} has no {TRAIN_RESULT_FILE}: the cost of training is unknown")
    return TrainResult.read_json(path)


def run(train_result: TrainResult, policy: CostPolicy, *, out_dir: Path | None = None) -> CheckResult:
    """Judge training time (wall or CPU, as ``cost.train_time`` says), peak memory and money of the training
    run against the ``cost`` section."""
    cost = train_result.cost
    seconds = cost.cpu_seconds if policy.train_time == "cpu" else cost.wall_seconds
    thresholds = [
        Threshold.judge("train_seconds", "cost.max_train_seconds", seconds, "<=", policy.max_train_seconds),
        Threshold.judge("peak_rss_mb", "cost.max_peak_rss_mb", cost.peak_rss_mb, "<=", policy.max_peak_rss_mb),
        Threshold.judge("money", "cost.max_money", cost.money, "<=", policy.max_money),
    ]
    details = {
        **cost.model_dump(mode="json"),
        "device": train_result.device,
        "train_examples": train_result.train_examples,
        "train_time": policy.train_time,
        "summary": (
            f"trained {train_result.train_examples} examples in {cost.wall_seconds:.1f} s "
            f"({cost.cpu_seconds:.1f} s CPU, {policy.train_time} judged) on "
            f"{train_result.device}, peak RSS {cost.peak_rss_mb:.0f} MB, {cost.money:.4f} {cost.currency}"
        ),
    }
    return finish(NAME, thresholds, details, out_dir=out_dir)
