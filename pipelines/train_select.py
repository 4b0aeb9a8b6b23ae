"""Which recipe training keeps: the frozen probe (head only) or the fine-tuned LoRA adapter, chosen by
out-of-fold estimates on the batch itself.

Why a choice at all (measured, bench/RESULTS.md): the head starts as a logistic-regression probe
fitted on the frozen embeddings, and on a small batch that probe already separates every training
row: training loss starts near zero. With nothing left to fit, each LoRA step only widens the
margins of rows already right, bending the features around those few rows, and the model ends below
the probe it started from (problem vs request, 2 × 16 rows: probe 0.958, LoRA 0.891 after its
30-step floor = 30 passes, training loss 0.0002). No noise weighting was involved (no row flagged),
cross-entropy lost as well, and a lower learning rate that rescues that task loses on another where
fine-tuning helps (card arrival vs delivery estimate: LoRA 0.85, probe 0.81, LoRA at lr 1e-3 0.77).
Whether fine-tuning helps depends on the data, not on a setting: so it is measured on the batch.

Pure parts (fold plan, choice) live here; the training loop that fills the estimates is in
``pipelines.train``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipelines.metrics import quality_metrics
from pipelines.train_params import TrainParams

Recipe = Literal["lora", "probe"]


@dataclass(frozen=True)
class FoldPlan:
    """Held-out folds to run and the LoRA step budget of each."""

    folds: list[tuple[np.ndarray, np.ndarray]]  # (train positions, held-out positions) into the rows
    planned: int
    steps: int


def plan_folds(y: np.ndarray, params: TrainParams, final_steps: int, seed: int) -> FoldPlan | None:
    """Stratified folds over the rows (``y``: their class indices), as many as the cost budget allows.

    The budget is counted in rows visited by fold training: ``select_cost`` × what the final run
    visits, but never less than ``select_min_visits``, so a tiny batch (whose final run costs little)
    gets every fold at the full recipe instead of an estimate from eight rows. A fold runs the
    recipe's own step budget for its rows (``steps_for``); when not even one fold fits, one fold runs
    with the steps that do. None when no class has two rows to split (nothing to hold out).
    """
    counts = np.bincount(y)
    k = min(params.select_folds, int(counts[counts > 0].min()))
    if k < 2:
        return None
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        fold_of[members] = (np.arange(len(members)) + rng.integers(k)) % k
    train_rows = len(y) - int(np.bincount(fold_of).max())
    batch = min(params.batch_size, train_rows)
    budget = max(params.select_cost * final_steps * min(params.batch_size, len(y)), params.select_min_visits)
    steps = params.steps_for(train_rows)
    runs = min(k, int(budget // (steps * batch)))
    if runs == 0:
        runs, steps = 1, max(1, int(budget // batch))
    folds = [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(runs)]
    return FoldPlan(folds=folds, planned=k, steps=steps)


def choose(y_true: np.ndarray, predictions: dict[Recipe, np.ndarray], z: float) -> tuple[Recipe, dict[str, float], str]:
    """The recipe to keep from out-of-fold predictions on the same held-out rows.

    Fine-tuning is kept only when it passes McNemar's test with continuity correction at ``z``: of
    the d rows where exactly one of the two is right, its lead must exceed one row plus ``z`` standard
    errors, (z·√d + 1) / n as a share of the n held-out rows, here applied to the macro-F1 lead. The
    probe is where training starts, so the burden of proof is on leaving it. On 32 rows a lead of one
    or two rows is noise (problem vs request, 2 × 16, seed 1: fine-tuned 0.969 out of fold against
    the probe's 0.906 from a 2-to-0 split of discordant rows, yet 0.883 against 0.958 on the test
    set); on a few hundred held-out rows a steady point or two clears it.
    """
    names = [str(c) for c in sorted(set(y_true.tolist()))]
    truth = [str(v) for v in y_true]
    estimates = {recipe: round(quality_metrics(truth, [str(v) for v in pred], names).macro_f1, 4)
                 for recipe, pred in predictions.items()}  # fmt: skip
    lora_right, probe_right = predictions["lora"] == y_true, predictions["probe"] == y_true
    discordant = int((lora_right != probe_right).sum())
    needed = (z * np.sqrt(discordant) + 1) / len(y_true)
    lead = estimates["lora"] - estimates["probe"]
    estimates["lead_needed"] = round(float(needed), 4)
    scores = f"fine-tuned {estimates['lora']:.3f} against the frozen probe's {estimates['probe']:.3f} out of fold"
    if lead > needed:
        return "lora", estimates, f"{scores}: a lead above the {needed:.3f} the paired noise allows"
    return "probe", estimates, (f"{scores}: fine-tuning did not lead by more than the {needed:.3f} the paired noise "
                                "allows, so the probe training started from is kept")
