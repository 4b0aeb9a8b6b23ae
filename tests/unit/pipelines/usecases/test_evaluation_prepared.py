"""The evaluation prepared beside training: waited for on the way out, and never the error a failed training shows."""

import threading
import time
from types import SimpleNamespace

import pytest

from pipelines.evaluation import preparation
from pipelines.usecases.retrain import evaluation_prepared


@pytest.fixture
def slow_preparation(monkeypatch):
    done = threading.Event()

    def prepare(holdout, settings, policy, batch, encoding):
        time.sleep(0.2)  # still running when the block ends
        done.set()

    monkeypatch.setattr(preparation, "prepare_evaluation", prepare)
    return done


def test_the_preparation_is_waited_for_before_evaluate_can_start(slow_preparation):
    with evaluation_prepared(SimpleNamespace(settings=None, policy=None), "holdout.csv", "batch.csv", None):
        pass
    assert slow_preparation.is_set()


def test_a_training_that_fails_keeps_its_own_error_and_the_preparation_still_ends(slow_preparation):
    with pytest.raises(RuntimeError, match="training failed"):
        with evaluation_prepared(SimpleNamespace(settings=None, policy=None), "holdout.csv", "batch.csv", None):
            raise RuntimeError("training failed")
    assert slow_preparation.is_set()
    assert not [t for t in threading.enumerate() if t.name == "tailor-prepare-evaluation"]
