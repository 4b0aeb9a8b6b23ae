"""Row weights from the margin to class mates, and the label-noise filter that applies them only to a noisy
batch, on synthetic embeddings: tight class clusters on the unit sphere, some labels flipped uniformly."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.training.class_margin import class_margins, margin_weights
from pipelines.training.objective import noise_weights
from pipelines.training.params import TrainParams

CLASSES, PER_CLASS, DIM = 12, 8, 32
MARGIN = TrainParams(noise_action="margin")  # noise_filter auto: only a batch found noisy is weighted


def clusters(flip_share: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings, given labels, whether each label was flipped): 8 rows around each of 12 class centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(CLASSES, DIM))
    truth = np.repeat(np.arange(CLASSES), PER_CLASS)
    emb = centres[truth] + rng.normal(scale=0.6, size=(len(truth), DIM))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    given = truth.copy()
    flipped = rng.choice(len(truth), size=round(flip_share * len(truth)), replace=False)
    given[flipped] = (truth[flipped] + rng.integers(1, CLASSES, size=len(flipped))) % CLASSES
    return emb, given, given != truth


def test_a_row_among_its_own_class_has_a_positive_margin_and_a_row_among_another_class_a_negative_one():
    emb = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99], [0.98, 0.2]])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    y = np.array([0, 0, 1, 1, 1])  # the last row sits with class 0 but is labelled 1

    margins = class_margins(emb, y, np.ones(len(y)))

    assert (margins[:4] > 0).all()
    assert margins[4] < 0


def test_margin_weights_put_the_flipped_rows_far_below_the_right_ones():
    emb, y, flipped = clusters(0.4)

    weights = margin_weights(emb, y, temperature=0.2)

    assert ((weights > 0) & (weights < 1)).all()
    # every flipped row below every right one but a few: the detector the weights rest on separates them
    assert (weights[flipped][:, None] < weights[~flipped][None, :]).mean() > 0.95
    assert np.median(weights[flipped]) < 0.2 < 0.8 < np.median(weights[~flipped])


def test_reweighting_the_class_means_lowers_the_flipped_rows_further():
    emb, y, flipped = clusters(0.4)

    once, thrice = margin_weights(emb, y, 0.2, rounds=1), margin_weights(emb, y, 0.2, rounds=3)

    assert thrice[flipped].mean() < once[flipped].mean()


@pytest.mark.parametrize(
    "y", [np.array([0, 0, 0, 0]), np.array([0, 0, 1, 1, 2])], ids=["one class", "a class of one row"]
)
def test_margins_refuse_labels_without_class_mates_to_compare(y):
    emb = np.eye(len(y), 4)

    with pytest.raises(ValueError, match="two classes of at least two rows"):
        margin_weights(emb, y, 0.2)


def test_the_filter_leaves_a_clean_batch_alone_and_says_why():
    emb, y, _ = clusters(0.0)

    noise = noise_weights(emb, y, CLASSES, MARGIN, seed=0)

    assert (noise.weights == 1).all() and noise.downweighted == 0
    assert "under noise_auto_fraction 10%: every row weighs 1" in noise.note


def test_the_filter_weights_a_noisy_batch_by_margin_and_counts_the_rows_nearer_another_class():
    emb, y, flipped = clusters(0.4)

    noise = noise_weights(emb, y, CLASSES, MARGIN, seed=0)

    np.testing.assert_allclose(noise.weights, margin_weights(emb, y, MARGIN.noise_margin_temperature))
    assert noise.downweighted == int((noise.weights < 0.5).sum())
    assert abs(noise.downweighted - flipped.sum()) <= 0.1 * len(y)
    assert "every row weighted by its margin to its class mates" in noise.note
    assert f"{noise.downweighted} rows nearer another class" in noise.note


@pytest.mark.parametrize("action", ["weight", "drop"])
def test_weight_and_drop_touch_only_flagged_rows(action):
    emb, y, flipped = clusters(0.4)

    noise = noise_weights(emb, y, CLASSES, TrainParams(noise_action=action), seed=0)

    touched = noise.weights < 1
    assert touched.any() and (touched & flipped).sum() > 0.8 * touched.sum()
    assert (noise.weights[touched] == 0).all() == (action == "drop")
    assert noise.downweighted == (int(touched.sum()) if action == "weight" else 0)


def test_noise_filter_none_weighs_every_row_one():
    emb, y, _ = clusters(0.4)

    noise = noise_weights(emb, y, CLASSES, TrainParams(noise_filter="none"), seed=0)

    assert (noise.weights == 1).all() and noise.note == "noise_filter none: every row weighs 1" and not noise.acted


def test_a_tiny_temperature_weights_a_wrong_row_down_but_never_to_zero():
    emb, given, flipped = clusters(0.4)
    weights = margin_weights(emb, given, temperature=1e-4)
    assert (weights > 0).all() and weights[flipped].min() == pytest.approx(1e-6)
