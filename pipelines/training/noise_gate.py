"""Whether a batch is noisy enough for ``noise_filter: auto`` to act on it: more flagged rows than a clean
batch of its size shows by chance, not only a large enough share.

Confident learning flags a few rows of a clean batch too, hard but right ones: on the tiny tasks of
bench/tasks.py it flagged 0.3-6 % of clean rows (10 seeds each at 8 and 16 per class: problem vs request
5.0 % and 1.3 %, arrival vs estimate 5.6 % and 4.4 %, topics5 0.3 %). On a 16-row batch that is two rows
often enough (3 in 10 samples of problem vs request at 8/class) to pass the 10 % share alone, and weighting
a clean batch's rows by their margins cost the probe it starts from 0.028 macro-F1 there (seed 0:
0.716 against 0.744, bench/RESULTS.md). So the flagged count must also be unlikely for a clean batch:
a one-sided binomial test at ``ALPHA`` against ``noise_auto_clean_rate``. From 71 rows up (at the
defaults) the share is the stricter of the two, so larger batches are judged as before; below that a batch
needs at most two flags more than the share asks (3 of 16, 5 of 32, 5 of 40), at some sizes none. With
``noise_auto_fraction`` 0 a batch still needs flags a clean one would not show: to act on every batch, use
``noise_filter: cleanlab``.
"""

from __future__ import annotations

from scipy.stats import binom

from pipelines.training.params import TrainParams

ALPHA = 0.05


def clean_would_flag(flagged: int, rows: int, clean_rate: float) -> float:
    """The chance that a clean batch of ``rows`` rows gets at least ``flagged`` flags, each row flagged with
    probability ``clean_rate``."""
    return float(binom.sf(flagged - 1, rows, clean_rate))


def why_not_noisy(flagged: int, rows: int, params: TrainParams) -> str:
    """Why ``auto`` leaves a batch with ``flagged`` of ``rows`` rows flagged alone; empty when it acts on it."""
    if rows == 0 or flagged / rows < params.noise_auto_fraction:
        return f"under noise_auto_fraction {params.noise_auto_fraction:.0%}"
    chance = clean_would_flag(flagged, rows, params.noise_auto_clean_rate)
    if chance >= ALPHA:
        return (
            f"as many as a clean batch of {rows} rows shows by chance (p = {chance:.2f} at "
            f"noise_auto_clean_rate {params.noise_auto_clean_rate:.0%})"
        )
    return ""
