"""Row weights for a noisy batch from each row's margin to its class mates in the frozen embedding space.

A uniformly flipped label puts a row among class mates it does not resemble: it sits nearer the mean
of its true class (whose right rows are the majority there) than the mean of the other rows of its
given class. The margin, cosine to the given class's mean without the row itself minus the highest
cosine to any other class's mean, is therefore low for wrong labels, and a sigmoid of it is the
row's weight. The means are then recomputed with those weights, so the wrong rows stop pulling
them, and the margins again (a few rounds; more changed nothing).

Why not confident learning's flags alone (bench/noisy_probe.py, Banking77, 40 % flipped, 3 seeds):
its out-of-sample probabilities come from probes trained on a fifth less of an already tiny batch,
while the leave-one-out class mean uses every other row. As a detector of the flipped rows the
margin's ROC AUC was 0.987 at 8/class against 0.96 for the out-of-fold probability of the label,
and the probe on the margin weights scored 0.729 at 8/class (0.677 with the flagged rows at
p^0.25) and 0.815 at 16/class (0.798). Soft weights, not a cut: keeping only rows above one half
scored 0.662. Every row is weighted, hard-but-right ones too, which costs on clean data (0.819
against 0.833 at 8/class): only a batch training's own label-noise filter finds noisy is weighted
(``noise_filter: auto``: enough of its rows flagged by confident learning, ``noise_gate``).

The default (``noise_action: margin``), though short of issue 25's target at 8/class: even dropping
exactly the flipped rows, the probe reaches 0.757 there, under 90 % of the clean default (0.761), and so
does real training on exactly the unflipped rows (0.753, ``bench/noise_oracle.py``); real training with the
margin kept 83.7 % (80.2 % with ``weight``; bench/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

ROUNDS = 3
MIN_WEIGHT = 1e-6


def class_margins(embeddings: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row: cosine to its class's weighted mean without the row, minus the highest cosine to another
    class's weighted mean (rows L2-normalised; only the classes present in ``y`` compete)."""
    classes, y_pos = np.unique(y, return_inverse=True)
    weighted = embeddings * weights[:, None]
    sums = np.zeros((len(classes), embeddings.shape[1]))
    np.add.at(sums, y_pos, weighted)
    own = sums[y_pos] - weighted
    own /= np.linalg.norm(own, axis=1, keepdims=True).clip(min=1e-9)
    means = sums / np.linalg.norm(sums, axis=1, keepdims=True).clip(min=1e-9)
    others = embeddings @ means.T
    others[np.arange(len(y)), y_pos] = -np.inf
    return (embeddings * own).sum(axis=1) - others.max(axis=1)


def margin_weights(embeddings: np.ndarray, y: np.ndarray, temperature: float, rounds: int = ROUNDS) -> np.ndarray:
    """Each row's weight in (0, 1): sigmoid(margin / ``temperature``), the means reweighted ``rounds`` times.

    Raises:
        ValueError: fewer than two classes, or a class with a single row (it has no class mates).
    """
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        raise ValueError("class margins need at least two classes of at least two rows each")
    weights = np.ones(len(y))
    for _ in range(rounds):
        weights = expit(class_margins(embeddings, y, weights) / temperature)
    # Down-weighted, never dropped: a zero (expit underflows at a small temperature) would leave the row out
    # of training unseen by min_per_class, and a class whose rows all reach zero has no mean to weigh against.
    return np.maximum(weights, MIN_WEIGHT)
