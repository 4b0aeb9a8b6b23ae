"""The evaluation prepared beside training: waited for on the way out, and never the error a failed training shows;
the load probe launched after the preparation, at the caller's priority, not the niced preparation's."""

import os
import threading
import time
from types import SimpleNamespace

import pytest

from pipelines.evaluation import preparation
from pipelines.evaluation.checks import load
from pipelines.usecases.retrain import evaluation_prepared

CTX = SimpleNamespace(settings=SimpleNamespace(base_model_dir="base"), policy=None)


def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.fixture
def slow_preparation(monkeypatch):
    done = threading.Event()

    def prepare(holdout, settings, policy, batch, encoding):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness() + 5)  # as the real one does
        time.sleep(0.2)  # still running when the block ends
        done.set()

    monkeypatch.setattr(preparation, "prepare_evaluation", prepare)
    return done


@pytest.fixture
def launches(monkeypatch, slow_preparation):
    seen = []
    monkeypatch.setattr(load, "launch_ahead", lambda base: seen.append((base, slow_preparation.is_set(), niceness())))
    return seen


def test_the_probe_is_launched_after_the_preparation_at_the_callers_priority(launches):
    with evaluation_prepared(CTX, "holdout.csv", "batch.csv", None):
        pass
    assert launches == [("base", True, niceness())]


def test_the_preparation_is_waited_for_before_evaluate_can_start(slow_preparation, launches):
    with evaluation_prepared(CTX, "holdout.csv", "batch.csv", None):
        pass
    assert slow_preparation.is_set()


def test_a_training_that_fails_keeps_its_own_error_and_the_preparation_still_ends(slow_preparation, launches):
    with pytest.raises(RuntimeError, match="training failed"):
        with evaluation_prepared(CTX, "holdout.csv", "batch.csv", None):
            raise RuntimeError("training failed")
    assert slow_preparation.is_set() and launches == []  # no candidate is coming: no probe to load for it
    assert not [t for t in threading.enumerate() if t.name.startswith(("tailor-prepare", "tailor-launch"))]


@pytest.mark.parametrize("failing", ["train", "fetch_production"])
def test_a_run_that_fails_before_evaluating_ends_any_probe_launched_for_it(
    failing, slow_preparation, launches, monkeypatch, tmp_path
):
    import logging

    from pipelines.records import ValidationReport
    from pipelines.usecases import retrain

    discarded = []
    monkeypatch.setattr(load, "discard_launched", lambda: discarded.append(True))
    monkeypatch.setattr(retrain, "warm_up_training", lambda: None)

    def fails(*args):
        raise RuntimeError(f"{failing} failed")

    def step(name, value=None):
        return fails if name == failing else (lambda *args: value)

    steps = retrain.Steps(
        production_labels=step("production_labels"),
        validate=step("validate", ValidationReport(batch="b.csv", rows=2, accepted=True)),
        train=step("train"),
        fetch_production=step("fetch_production"),
        evaluate=step("evaluate"),
        register=step("register"),
        promote=step("promote"),
    )
    request = retrain.RetrainRequest(tmp_path / "b.csv", "demo", tmp_path / "h.csv", workdir=tmp_path / "run")
    with pytest.raises(RuntimeError, match=f"{failing} failed"):
        retrain.run(CTX, request, logging.getLogger("test"), steps)
    assert discarded == [True]
    # Training failed: nothing was launched. It trained, then fetching production failed: launched, then ended.
    assert len(launches) == (failing == "fetch_production")
