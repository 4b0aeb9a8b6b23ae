"""The selection's runs on the batch itself: each fold's probe, then LoRA folds until the choice between the
probe and fine-tuning is settled. The pure parts (fold plan, McNemar's choice, when it is settled) live in
``pipelines.training.select``; the final run that follows is ``pipelines.training.recipe.train``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from pipelines.records import Selection
from pipelines.training.cache import EncodedData
from pipelines.training.objective import logreg_head, predict_cached, seed_everything, train_steps, wrap_lora
from pipelines.training.params import TrainParams
from pipelines.training.select import (
    UNSCORED,
    Tally,
    choose,
    continued_steps,
    default_recipe,
    fold_order,
    plan_folds,
    settled,
)
from serving.model import LoadedBase, MeanPoolClassifier

if TYPE_CHECKING:
    from peft import PeftModel


def select_recipe(
    base: LoadedBase,
    num_labels: int,
    make_config: Callable,
    start: int,
    data: EncodedData,
    rows: np.ndarray,
    y_all: np.ndarray,
    weights: np.ndarray,
    params: TrainParams,
    final_steps: int,
    seed: int,
    bar=None,
    *,
    every_kept_cached: bool,
) -> tuple[Selection, PeftModel | None]:
    """Probe or fine-tuned, from out-of-fold runs of both recipes on ``rows`` (see ``pipelines.training.select``),
    and the fine-tuned fold the final run continues (None: it trains from the probe).

    Each fold fits the probe on its training rows and scores it on the held-out ones, all folds first
    (a logistic regression each); then folds fine-tune from their probe with the recipe's own step
    budget and score the same rows again, paired, until the outcome is settled whatever the folds
    not yet run would give: those never run, and the kept recipe is the one all folds would choose.

    When fine-tuning is the default and kept, and exactly one fold ran (a large batch, whose budget pays for one fold),
    that fold's model, already trained on (k−1)/k of the rows, is returned for the final run to
    continue on every row (``continued_steps``) rather than trained again from the probe: on Banking77
    8/class the fold was 58 of the run's 135 steps. Its held-out estimate stays the fold's own, out of
    fold as before. Not with several folds (none of them is the model), not where the probe is the default
    (a tiny batch, where fold and final run have the same budget and continuing was never measured), nor
    when kept rows lie past the step budget's cache (``every_kept_cached`` False): a run from the probe fits
    its head on them, the fold never saw them.
    """
    if params.select != "auto":
        return (
            Selection(kept=params.select, reason=f"select: {params.select} in the train parameters", estimates={}),
            None,
        )
    default = default_recipe(len(rows), num_labels, params)
    plan = plan_folds(y_all[rows], params, final_steps, seed)
    if not plan.folds:
        return (
            Selection(
                kept=default,
                default=default,
                estimates={},
                folds_planned=plan.planned,
                fold_steps=plan.steps,
                reason=f"no out-of-fold estimate ({plan.skipped}): the default for a batch of {len(rows)} rows is kept",
            ),
            None,
        )
    heads, held, probe = [], [], []
    for train_pos, held_pos in plan.folds:
        fold_rows, held_rows = rows[train_pos], rows[held_pos]
        head = torch.nn.Linear(data.embeddings.shape[1], num_labels)
        logreg_head(
            head, data.embeddings[fold_rows], y_all[fold_rows], params.head_C, seed, sample_weight=weights[fold_rows]
        )
        with torch.no_grad():
            probe.append(head(torch.from_numpy(data.embeddings[held_rows]).to(head.weight)).argmax(-1).numpy())
        heads.append(head)
        held.append(y_all[held_rows])
    lora = [np.full(len(y), UNSCORED) for y in held]
    if bar is not None:
        bar.total += plan.steps * len(plan.folds)
    ran, fold_model = 0, None
    for number in fold_order([p == y for p, y in zip(probe, held)], default):
        tally = Tally.of(np.concatenate(held), np.concatenate(probe), np.concatenate(lora))
        if settled(tally, params.select_z, default):
            break
        fold_rows, held_rows = rows[plan.folds[number][0]], rows[plan.folds[number][1]]
        model = MeanPoolClassifier(base.shared_copy(), num_labels).to(torch.device(base.device))
        model.classifier.load_state_dict(heads[number].state_dict())
        generator = seed_everything(seed + number + 1)
        fold_model, _ = train_steps(
            wrap_lora(model, make_config), params, start, data, fold_rows, y_all, weights, plan.steps, generator, bar
        )
        lora[number] = predict_cached(fold_model, data, held_rows, start)
        ran += 1
    if bar is not None:
        bar.total -= plan.steps * (len(plan.folds) - ran)
    selection = choose(
        np.concatenate(held),
        {"probe": np.concatenate(probe), "lora": np.concatenate(lora)},
        params.select_z,
        default,
    )
    selection = selection.model_copy(update={"folds": ran, "folds_planned": plan.planned, "fold_steps": plan.steps})
    if not (ran == 1 and default == selection.kept == "lora" and every_kept_cached):
        return selection, None
    more = continued_steps(final_steps, plan.steps, len(rows), params.batch_size)
    continued = (
        f"; the final adapter continues that fold's fine-tuned weights ({plan.steps} steps on {len(fold_rows)} "
        f"rows), its head refitted as a probe on all {len(rows)} rows, for {more} more steps over all of them"
    )
    return selection.model_copy(update={"continued_steps": more, "reason": selection.reason + continued}), fold_model
