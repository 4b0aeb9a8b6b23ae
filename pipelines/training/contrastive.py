"""The contrastive step a kept probe gets with ``contrastive: true``: the encoder's features adapted on pairs of
rows, then the probe refitted.

Off by default (bench/RESULTS.md, "2026-12-07 (18:50-19:50)"; docs/decisions/0016): it gained on problem vs request,
one of the two tasks it was tuned on (not on the other, arrival vs estimate), and on one of five binary tasks of
bench/tasks.py written after it was tuned, and lost to the probe on the other four, where the probe already
separated the classes well (SetFit was at or below the probe there too). No statistic of the batch told where it
pays: ``tailor evaluate``'s probe baseline shows whether it does on a holdout of the user's own data.

Why it was built (bench/RESULTS.md, "2026-12-07 (12:55-15:05)"): where the selection keeps the frozen probe (a small
batch, on which fine-tuning through the classification loss only memorises), SetFit, what practitioners pick for
8-64 labels per class, led that probe on binary tasks (18 fresh samples, problem vs request 8/class +0.008, arrival
vs estimate 16/class +0.006; not at arrival vs estimate 8/class). Its gain comes from the pairs: two rows of the
same label are pulled together, two of different labels apart, which reshapes the features without fitting a head,
so a handful of rows is not memorised. Done with LoRA and in-batch pairs (a batch of B rows gives B(B-1)/2 pairs for
B forward passes, where SetFit runs both texts of every pair through the encoder) it costs a fraction of SetFit's
time (0.07-0.17 on the binary tasks, "2026-12-07 (16:10-17:15)"). Only on batches of at most
``contrastive_max_classes`` classes: on five topics the probe already separates, it lost 0.02 to the probe
(``pipelines.training.select.with_contrastive``).

The loss is SetFit's CosineSimilarityLoss: the cosine of two rows' pooled, normalised embeddings is pulled
to 1 for the same label and to 0 for different labels, positive and negative pairs weighing half each (a
binary batch has fewer positive pairs than negative ones only by chance; five classes, four times fewer).
Each pair weighs the product of its rows' noise weights; a batch the label-noise filter acted on does not take
the step, whatever its weights came to (``pipelines.training.select.with_contrastive``): with 40 % of labels
flipped it lost 0.032 to the probe.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from pipelines.training.cache import EncodedData, encode_frozen, pad_batch
from pipelines.training.objective import (
    MICRO_BATCH,
    adapted_head,
    batch_order,
    embed_cached,
    logreg_head,
    lr_lambda,
    take_step,
    trainable_parts,
    wrap_lora,
)
from pipelines.training.params import TrainParams
from registry.errors import RefusedError
from serving.embeddings import length_sorted_batches
from serving.model import LoadedBase, MeanPoolClassifier


def _diverged(what: str, params: TrainParams) -> RefusedError:
    return RefusedError(
        f"the contrastive step diverged: {what}; lower contrastive_lr ({params.contrastive_lr}); nothing was written"
    )


def pair_loss(embeddings: torch.Tensor, y: torch.Tensor, weight: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """Mean squared gap between each pair's cosine and its target (1: same label, 0: different), the positive
    and the negative pairs averaged apart and then together; ``embeddings`` are normalised, ``row`` says which
    row each is: a step's batch can hold a row twice (``batch_order`` fills its last batch from the next pass),
    and a row paired with itself is no pair."""
    cosine = embeddings @ embeddings.T
    same = (y[:, None] == y[None, :]).to(cosine)
    pair_weight = (weight[:, None] * weight[None, :]) * (row[:, None] != row[None, :]).to(cosine)
    error = (cosine - same) ** 2
    parts = [(error * w).sum() / w.sum() for w in (pair_weight * same, pair_weight * (1 - same)) if w.sum() > 0]
    return sum(parts) / len(parts) if parts else (embeddings * 0).sum()


def contrastive_blocks(params: TrainParams, num_layers: int) -> int:
    """How many blocks, from the top, the step adapts: ``contrastive_layers``, or every one."""
    return params.contrastive_layers or num_layers


def contrastive_steps_for(rows: int, params: TrainParams) -> int:
    """Optimiser steps that give each row about ``contrastive_pairs_per_row`` pairs: a row meets the batch's
    other B−1 rows at each of its passes, and a pass over the rows takes rows / B steps. Never more than
    ``max_steps``: the step on a batch of thousands of rows (``select: contrastive``) would otherwise take
    thousands of full passes through the encoder."""
    batch = min(params.contrastive_batch_size, rows)
    wanted = math.ceil(rows * params.contrastive_pairs_per_row / max(1, batch - 1) / batch)
    return max(1, min(params.max_steps, wanted))


def embed_in_parts(
    embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], hidden: list[torch.Tensor], idx: list[int]
) -> tuple[torch.Tensor, list[int]]:
    """The embeddings of rows ``idx`` (``embed(padded states, mask)``, on ``hidden``'s states), run in
    length-sorted parts of ``MICRO_BATCH`` as the classifier's steps are (``objective.backward_in_parts``): a
    batch of 16 short messages padded to its longest is half padding (problem vs request: 43-47 % of the tokens
    useful). The pair loss couples every row of a batch, so the parts are joined, with the graph kept for one
    backward; in the parts' order, returned beside them (the loss does not depend on the order)."""
    by_length = length_sorted_batches(list(range(len(idx))), [hidden[i].shape[0] for i in idx], MICRO_BATCH)
    parts = [[idx[k] for k in part] for part in by_length]
    return torch.cat([embed(*pad_batch([hidden[i] for i in part])) for part in parts]), [i for p in parts for i in p]


def train_contrastive(
    peft_model,
    params: TrainParams,
    start: int,
    data: EncodedData,
    y: np.ndarray,
    weights: np.ndarray,
    steps: int,
    generator: torch.Generator,
    bar=None,
):
    """Train the LoRA weights of ``peft_model`` (its blocks from ``start``, on ``data``'s cached states, one per
    row of ``y``) with :func:`pair_loss` for ``steps`` steps; the head is not trained here (the caller refits
    it on the adapted embeddings). Returns the model and the last batch loss.

    Raises:
        RefusedError: the loss or the weights stop being finite.
    """
    device = next(peft_model.parameters()).device
    inner = peft_model.base_model.model
    lora_params, _ = trainable_parts(peft_model)
    optimiser = torch.optim.AdamW(lora_params, lr=params.contrastive_lr, weight_decay=params.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_lambda(steps, params.warmup_fraction))
    target = torch.from_numpy(y).to(device)
    row_weight = torch.from_numpy(weights).float().to(device)
    if bar is not None:
        bar.total = bar.n + steps
    peft_model.train()
    loss = None
    for idx in batch_order(len(y), steps, min(params.contrastive_batch_size, len(y)), generator):
        optimiser.zero_grad(set_to_none=True)
        embedded, order = embed_in_parts(lambda hidden, mask: inner.embed_from(hidden, mask, start), data.hidden, idx)
        row = torch.tensor(order, device=device)
        batch_loss = pair_loss(embedded, target[row], row_weight[row], row)
        batch_loss.backward()
        loss = batch_loss.item()
        if not math.isfinite(loss):
            raise _diverged(f"the loss became {loss}", params)
        take_step(optimiser, schedule, loss, bar)
    if not all(torch.isfinite(p).all() for p in lora_params):
        raise _diverged("the adapter's weights are not finite", params)
    peft_model.eval()
    return peft_model, loss


def contrastive_adapter(
    model: MeanPoolClassifier,
    base: LoadedBase,
    texts: list[str],
    rows: np.ndarray,
    y_all: np.ndarray,
    weights: np.ndarray,
    params: TrainParams,
    configure: Callable[[int], object],
    generator: torch.Generator,
    seed: int,
    bar=None,
):
    """The contrastive recipe's adapter: ``model`` (its head the probe) wrapped in LoRA on its upper
    :func:`contrastive_blocks` (``configure(start)``: a fresh LoraConfig for blocks ``start..``), trained by
    :func:`train_contrastive` on ``rows``, its head refitted as a probe on their adapted embeddings. Returns the
    PEFT model, the last batch loss and the steps taken.

    The rows are encoded again up to the first adapted block only: the step adapts more blocks than the recipe's
    cache holds. By default (every block adapted) that is the token-embedding layer alone, milliseconds on a
    batch small enough to keep its probe.
    Only ``rows`` take part, steps and head: on a batch above the step budget's cache (``select: contrastive``
    forced on thousands of rows) the uncached ones are left out of both.
    """
    num_layers = len(model.layers())
    start = num_layers - contrastive_blocks(params, num_layers)
    data = encode_frozen(
        model, base, [texts[i] for i in rows], start, params.max_length, np.ones(len(rows), bool), pool=False
    )
    y, w = y_all[rows], weights[rows]
    steps = contrastive_steps_for(len(rows), params)
    peft_model, loss = train_contrastive(
        wrap_lora(model, lambda: configure(start)), params, start, data, y, w, steps, generator, bar
    )
    adapted = embed_cached(peft_model, data, np.arange(len(rows)), start)
    logreg_head(adapted_head(peft_model), adapted, y, params.head_C, seed, w)
    return peft_model, loss, steps
