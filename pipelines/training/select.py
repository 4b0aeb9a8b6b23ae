"""Which recipe training keeps: the frozen probe (head only) or the fine-tuned LoRA adapter, chosen by
out-of-fold estimates on the batch itself; and whether a kept probe gets the contrastive step when it is
switched on (``with_contrastive``, pipelines/training/contrastive.py).

Why a choice at all (measured, bench/RESULTS.md): the head starts as a logistic-regression probe
fitted on the frozen embeddings, and on a small batch that probe already separates every training
row: training loss starts near zero. With nothing left to fit, each LoRA step only widens the
margins of rows already right, bending the features around those few rows, and the model ends below
the probe it started from (problem vs request, 2 × 16 rows: probe 0.958, LoRA 0.891 after its
30-step floor = 30 passes, training loss 0.0002). No noise weighting was involved (no row flagged),
cross-entropy lost as well, and a lower learning rate that rescues that task loses on another where
fine-tuning helps (card arrival vs delivery estimate: LoRA 0.85, probe 0.81, LoRA at lr 1e-3 0.77).
Nor is it the passes over the batch: capping the steps at 8 passes (8 steps on 32 rows) still fell
to 0.794 / 0.900 (seeds 0 / 1) against the probe's 0.937, and at 4 passes LoRA barely leaves the
probe and loses the gain where fine-tuning helps (arrival vs estimate 0.794 / 0.834 against the
probe's 0.809 / 0.848; 30 steps: 0.810 / 0.887). Whether fine-tuning helps depends on the data, not
on a setting: so it is measured on the batch.

Pure parts (fold plan, choice) live here; the runs that fill the estimates are in
``pipelines.training.select_runs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from pipelines.metrics import quality_metrics
from pipelines.records import Selection
from pipelines.training.params import TrainParams

Recipe = Literal["lora", "probe"]


@dataclass(frozen=True)
class FoldPlan:
    """Held-out folds to run and the LoRA step budget of each; ``skipped`` says why none run."""

    folds: list[tuple[np.ndarray, np.ndarray]]  # (train positions, held-out positions) into the rows
    planned: int
    steps: int
    skipped: str = ""


def default_recipe(rows: int, classes: int, params: TrainParams) -> Recipe:
    """What training keeps unless the out-of-fold estimate shows the other recipe ahead beyond the noise.

    Large batches (``select_large_rows`` rows or ``select_large_classes`` classes): fine-tuning, which
    leads the probe there by a steady point or so (Banking77 8/16/64 per class: +0.013/+0.010/+0.009)
    that one held-out fold cannot resolve. Tiny batches: the probe, which fine-tuning can fall below
    by memorising the few rows (problem vs request, 2 × 16 rows: 0.891 against 0.958).
    """
    large = rows >= params.select_large_rows or classes >= params.select_large_classes
    return "lora" if large else "probe"


def plan_folds(y: np.ndarray, params: TrainParams, final_steps: int, seed: int) -> FoldPlan:
    """Stratified folds over the rows (``y``: their class indices), as many as the cost budget allows.

    The budget is counted in rows visited by fold training: ``select_cost`` × what the final run
    visits, but never less than ``select_min_visits``, so a tiny batch (whose final run costs little)
    gets every fold. Each fold runs the full recipe for its rows (``steps_for``), never fewer steps
    than that: an under-trained fold would bias the estimate toward the probe. When not even one fold
    fits the budget, none runs and the default for the batch's size stands. A class with a single row
    is never held out (it stays in every fold's training rows).
    """
    counts = np.bincount(y)
    splittable = counts[counts >= 2]
    if not len(splittable):
        return FoldPlan(folds=[], planned=0, steps=0, skipped="no class has two rows to split")
    k = min(params.select_folds, int(splittable.min()))
    rng = np.random.default_rng(seed)
    fold_of = np.full(len(y), -1)
    for label in np.flatnonzero(counts >= 2):
        members = rng.permutation(np.flatnonzero(y == label))
        fold_of[members] = (np.arange(len(members)) + rng.integers(k)) % k
    train_rows = len(y) - int(np.bincount(fold_of[fold_of >= 0]).max())
    batch = min(params.batch_size, train_rows)
    budget = max(params.select_cost * final_steps * min(params.batch_size, len(y)), params.select_min_visits)
    steps = params.steps_for(train_rows)
    runs = min(k, int(budget // (steps * batch)))
    folds = [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(runs)]
    skipped = (
        ""
        if runs
        else (
            f"one fold at the full recipe ({steps} steps × {batch} rows) costs more than the "
            f"budget of {int(budget)} rows visited (select_cost, select_min_visits)"
        )
    )
    return FoldPlan(folds=folds, planned=k, steps=steps, skipped=skipped)


def continued_steps(final_steps: int, fold_steps: int, rows: int, batch_size: int) -> int:
    """Steps the final run takes when it continues the one fold fine-tuned instead of starting from the probe.

    That fold already ran the recipe on (k−1)/k of the rows: what is left is the recipe's budget less
    the fold's steps, but at least one pass over every row, so the rows the fold held out are trained on
    (Banking77 8/class: 77 − 58 = 19 steps, raised to the 20 that visit its 616 rows once). Never more
    than the recipe's own budget, so continuing never costs more than training from the probe.
    """
    one_pass = math.ceil(rows / min(batch_size, rows))
    return min(final_steps, max(final_steps - fold_steps, one_pass))


def may_run_contrastive(params: TrainParams, classes: int) -> bool:
    """Whether training on a batch of ``classes`` classes can end in the contrastive step: asked for, or a probe
    the batch may keep (``with_contrastive``)."""
    auto = params.select == "auto" and params.contrastive and classes <= params.contrastive_max_classes
    return params.select == "contrastive" or auto


def with_contrastive(selection: Selection, params: TrainParams, classes: int, noisy: bool) -> Selection:
    """``selection`` with a kept probe turned into the contrastive recipe when ``contrastive`` is on, the choice was
    the batch's own (``select: auto``; a forced ``probe`` stays the probe), the probe was the default for the
    batch's size (a small batch: a large one that keeps the probe has shown fine-tuning does not help it) and the
    batch has at most ``contrastive_max_classes`` classes and was not found ``noisy`` (the label-noise filter acted
    on it, whatever the weights came to: pairs with wrong labels pull the wrong rows together, and with 40 % of
    labels flipped the step lost 0.032 to the probe on arrival vs estimate 16/class). The out-of-fold test compared
    fine-tuning with the probe, not with the contrastive step (on 16-32 rows a lead of the step's size is noise):
    the step is what a kept probe gets where the user switched it on. Off by default: it gained on problem vs
    request (one of the two tasks it was tuned on) and on one of five two-class tasks built after it was tuned,
    and lost to the probe on the other four and on three and five topics (pipelines/training/contrastive.py).
    """
    if selection.kept != "probe" or selection.default != "probe" or not params.contrastive:
        return selection  # a forced recipe has no default
    if classes > params.contrastive_max_classes:
        reason = (
            f"{selection.reason}; no contrastive step: {classes} classes, above contrastive_max_classes "
            f"({params.contrastive_max_classes})"
        )
        return selection.model_copy(update={"reason": reason})
    if noisy:
        reason = f"{selection.reason}; no contrastive step: the label-noise filter acted on this batch"
        return selection.model_copy(update={"reason": reason})
    reason = (
        f"{selection.reason}; the probe's features are then adapted by a contrastive step on pairs of rows and "
        "the probe refitted on them (contrastive: true)"
    )
    return selection.model_copy(update={"kept": "contrastive", "reason": reason})


UNSCORED = -1  # a held-out row no fine-tuned fold predicted: its fold was never needed (``settled``)


def switches(challenger_only_right: int, default_only_right: int, z: float) -> bool:
    """McNemar's rule of ``choose``: the challenger replaces the default only when its lead in
    discordant rows exceeds one row plus ``z`` standard errors, |b − c| > z·√(b + c) + 1."""
    lead = challenger_only_right - default_only_right
    return lead > z * float(np.sqrt(challenger_only_right + default_only_right)) + 1


@dataclass(frozen=True)
class Tally:
    """McNemar's counts on the held-out rows so far, and what the rows still unscored can add to them."""

    b: int  # rows only fine-tuning got right
    c: int  # rows only the probe got right
    probe_wrong_left: int  # unscored rows the probe got wrong: each can add one to b
    probe_right_left: int  # unscored rows the probe got right: each can add one to c

    @classmethod
    def of(cls, y_true: np.ndarray, probe: np.ndarray, lora: np.ndarray) -> "Tally":
        """From predictions on the same rows, ``lora`` being ``UNSCORED`` where no fine-tuned fold ran."""
        scored = lora != UNSCORED
        probe_right, lora_right = probe == y_true, lora == y_true
        return cls(
            b=int((lora_right & ~probe_right).sum()),
            c=int((probe_right & ~lora_right & scored).sum()),
            probe_wrong_left=int((~scored & ~probe_right).sum()),
            probe_right_left=int((~scored & probe_right).sum()),
        )


def settled(tally: Tally, z: float, default: Recipe) -> bool:
    """Whether no fine-tuned predictions on the held-out rows still unscored can change what ``choose`` keeps.

    The probe's predictions are known for every held-out row (a logistic regression per fold costs
    almost nothing), so each row still to score can add at most one to b (where the probe is wrong)
    or to c (where it is right), any mix of them reachable. The rule is monotone in the default's
    count (more of it only lowers the challenger's lead and raises the bar), so the outcome is settled
    when the challenger cannot pass at the default's lowest count for any count of its own, or
    cannot fail at the default's highest.
    """
    t = tally
    if default == "probe":  # the challenger is fine-tuning: its count is b
        own, own_left, other, other_left = t.b, t.probe_wrong_left, t.c, t.probe_right_left
    else:
        own, own_left, other, other_left = t.c, t.probe_right_left, t.b, t.probe_wrong_left
    reachable = own + np.arange(own_left + 1)
    can_switch = any(switches(int(w), other, z) for w in reachable)
    can_stay = not all(switches(int(w), other + other_left, z) for w in reachable)
    return not (can_switch and can_stay)


def fold_order(probe_right: list[np.ndarray], default: Recipe) -> list[int]:
    """Fold numbers in the order that settles the outcome soonest (``probe_right``: per fold, whether the
    probe got each held-out row right): most rows the challenger could still win first, the probe's
    errors when fine-tuning challenges, its right answers when the probe does. The order changes
    which recipe is kept not at all (each fold trains from its own seed), only which fold a kept LoRA
    continues when one fold settles it (``pipelines.training.select_runs.select_recipe``)."""
    could_win = [int((~right).sum() if default == "probe" else right.sum()) for right in probe_right]
    return sorted(range(len(probe_right)), key=lambda f: -could_win[f])


def choose(y_true: np.ndarray, predictions: dict[Recipe, np.ndarray], z: float, default: Recipe) -> Selection:
    """The recipe to keep from out-of-fold predictions on the same held-out rows.

    McNemar's test with continuity correction on the discordant rows: b where only fine-tuning is
    right, c where only the probe is. The other recipe replaces ``default`` only when its lead in
    rows exceeds one row plus ``z`` standard errors of the paired difference, |b − c| > z·√(b + c) + 1.
    Counts, not macro-F1, are what the test is about: a macro-F1 lead can be large from two rows of
    a small class (2-to-0 discordant on 40 rows is a 0.24 macro-F1 lead) and still be noise. On 32
    rows a lead of one or two is noise (problem vs request, seed 1: fine-tuned 0.969 out of fold
    against the probe's 0.906 from a 2-to-0 split, yet 0.883 against 0.958 on the test set), and on 16
    rows a lead of three (problem vs request 8/class, a fresh sample: 3-to-0, yet 0.837 against 0.900 on
    200 test rows): hence ``select_z`` at one-sided 5 %, where it takes 5-to-0.

    Fine-tuned predictions may be ``UNSCORED`` on rows whose folds never ran because the outcome was
    already ``settled``: the counts and estimates are then those of the rows both recipes scored.

    Raises:
        ValueError: unscored rows that could still change the outcome (a caller that stopped too early).
    """
    scored = predictions["lora"] != UNSCORED
    tally = Tally.of(y_true, predictions["probe"], predictions["lora"])
    b, c, wrong_left, right_left = tally.b, tally.c, tally.probe_wrong_left, tally.probe_right_left
    if not settled(tally, z, default):
        raise ValueError(f"{int((~scored).sum())} unscored held-out rows could still change the outcome")
    names = [str(v) for v in sorted(set(y_true.tolist()))]
    truth = [str(v) for v in y_true[scored]]
    estimates = (
        {
            recipe: round(quality_metrics(truth, [str(v) for v in pred[scored]], names).macro_f1, 4)
            for recipe, pred in predictions.items()
        }
        if scored.any()
        else {}
    )
    needed = z * float(np.sqrt(b + c)) + 1
    other: Recipe = "probe" if default == "lora" else "lora"
    lead = (b - c) if other == "lora" else (c - b)
    kept = other if (switches(b, c, z) if other == "lora" else switches(c, b, z)) else default
    names_of = {"lora": "fine-tuning", "probe": "the frozen probe"}
    # Only the rows of the folds that ran: those where the probe erred most come first (fold_order), so
    # these figures are not the batch's estimate of either recipe when folds were left out.
    compared = (
        f" (macro-F1 {estimates['lora']:.3f} against {estimates['probe']:.3f} on the {int(scored.sum())} "
        "held-out rows both scored)"
        if estimates
        else ""
    )
    reason = (
        f"out of fold, fine-tuning alone was right on {b} rows and the probe alone on {c}{compared}; "
        f"{names_of[default]} is the default for a batch this size and {names_of[other]} "
        + (
            f"leads it by {lead} rows, beyond the {needed:.1f} the paired noise allows"
            if kept == other
            else f"does not lead it by more than the {needed:.1f} rows the paired noise allows"
        )
    )
    if wrong_left + right_left:
        reason += (
            f"; fine-tuning was not run on the other {wrong_left + right_left} held-out rows: the probe was "
            f"wrong on {wrong_left} of them, and whatever fine-tuning predicted there could not change this outcome"
        )
    return Selection(
        kept=kept,
        default=default,
        reason=reason,
        estimates=estimates,
        lora_only_right=b,
        probe_only_right=c,
        rows_needed=round(needed, 3),
        rows_scored=int(scored.sum()),
    )
