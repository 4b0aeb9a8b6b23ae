"""The auto noise gate: a share of flagged rows is not enough on a tiny batch, a clean one shows it by chance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from pipelines.training.noise_gate import why_not_noisy
from pipelines.training.objective import noise_weights
from pipelines.training.params import TrainParams

DEFAULTS = TrainParams()


def test_two_flags_of_sixteen_rows_are_what_a_clean_batch_shows_three_are_not():
    assert "as many as a clean batch of 16 rows shows by chance" in why_not_noisy(2, 16, DEFAULTS)
    assert why_not_noisy(3, 16, DEFAULTS) == ""
    assert "clean batch of 32 rows" in why_not_noisy(4, 32, DEFAULTS)  # 12.5 %: past the share, not the count
    assert why_not_noisy(5, 32, DEFAULTS) == ""


def test_a_share_under_the_fraction_is_never_noisy():
    assert why_not_noisy(61, 616, DEFAULTS) == "under noise_auto_fraction 10%"
    assert why_not_noisy(62, 616, DEFAULTS) == ""
    assert why_not_noisy(0, 0, DEFAULTS) == "under noise_auto_fraction 10%"


def test_from_71_rows_the_share_alone_decides_as_before():
    for rows in range(71, 2001):
        at_share = math.ceil(DEFAULTS.noise_auto_fraction * rows - 1e-9)
        assert why_not_noisy(at_share, rows, DEFAULTS) == "", rows
        assert why_not_noisy(at_share - 1, rows, DEFAULTS) != "", rows
    assert why_not_noisy(7, 70, DEFAULTS) != ""  # 10 %, yet as many as a clean 70-row batch shows by chance


def test_a_clean_rate_of_zero_leaves_the_share_rule_alone():
    assert why_not_noisy(2, 16, TrainParams(noise_auto_clean_rate=0.0)) == ""


@pytest.mark.parametrize("rate", [-0.01, 1.0, 1.5])
def test_a_clean_rate_out_of_range_is_refused(rate):
    with pytest.raises(ValidationError, match="noise_auto_clean_rate"):
        TrainParams(noise_auto_clean_rate=rate)


@pytest.fixture
def flags(monkeypatch):
    """``noise_weights`` with confident learning replaced: it flags the first ``n`` rows."""
    import cleanlab.filter

    from pipelines.training import objective

    state = {"n": 0}

    def flagged(y, proba, **_):
        out = np.zeros(len(y), dtype=bool)
        out[: state["n"]] = True
        return out

    monkeypatch.setattr(cleanlab.filter, "find_label_issues", flagged)
    monkeypatch.setattr(objective, "out_of_sample_proba", lambda emb, y, k, seed: np.full((len(y), k), 1 / k))
    return state


def two_classes(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(rows, 8))
    return emb / np.linalg.norm(emb, axis=1, keepdims=True), np.arange(rows) % 2


def test_noise_weights_leave_a_tiny_batch_alone_on_two_flags_and_weigh_it_on_three(flags):
    emb, y = two_classes(16)
    flags["n"] = 2
    quiet = noise_weights(emb, y, 2, DEFAULTS, seed=0)
    assert (quiet.weights == 1).all() and not quiet.acted
    assert "flagged 2 of 16 rows" in quiet.note and "shows by chance" in quiet.note
    flags["n"] = 3
    noisy = noise_weights(emb, y, 2, DEFAULTS, seed=0)
    assert (noisy.weights < 1).any() and noisy.acted
    assert "margin to its class mates" in noisy.note
