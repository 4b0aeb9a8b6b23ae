"""What a training step optimises and how: noise weights, the probe head, the loss, the step order,
micro-batches, and the LoRA fit itself."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pipelines.batches.noise_audit import out_of_sample_proba
from pipelines.training.cache import ENCODE_BATCH, EncodedData, pad_batch
from pipelines.training.class_margin import margin_weights
from pipelines.training.noise_gate import why_not_noisy
from pipelines.training.params import TrainParams
from registry.errors import RefusedError
from serving.embeddings import length_sorted_batches
from serving.model import HEAD_MODULE, MeanPoolClassifier

ABSENT_CLASS_LOGIT = -1e4


MICRO_BATCH = 8


@dataclass(frozen=True)
class NoiseWeights:
    """Each row's training weight (1, less, or 0 = dropped), and what the label-noise filter did, for TrainResult."""

    weights: np.ndarray
    downweighted: int  # rows kept at a weight below 1 (weight) or below one half (margin: every row is below 1)
    note: str
    # The filter acted on the batch (cleanlab always; auto where the gate found it noisy), whatever the weights
    # came to: with drop, a class the filter would prune below min_per_class gets every row back at weight 1.
    acted: bool


def label_issues(
    embeddings: np.ndarray, y: np.ndarray, num_labels: int, params: TrainParams, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-sample class probabilities of every row and the rows confident learning flags as mislabelled."""
    from cleanlab.filter import find_label_issues

    proba = out_of_sample_proba(embeddings, y, num_labels, seed=seed)
    # n_jobs=1: cleanlab's worker pool costs more than it saves on small batches, and its workers,
    # forked inside a Prefect task, die with a TerminationSignal traceback when the pool is closed.
    issues = find_label_issues(
        y, proba, filter_by=params.noise_filter_by, min_examples_per_class=params.min_per_class, n_jobs=1
    )
    return proba, issues


def noise_weights(
    embeddings: np.ndarray, y: np.ndarray, num_labels: int, params: TrainParams, seed: int
) -> NoiseWeights:
    """Each example's training weight: 1, or less (0 = dropped) where the batch's labels look wrong.

    Confident learning (cleanlab) flags the rows whose label is probably wrong; with ``noise_filter``
    auto nothing happens unless the flagged rows say the batch is noisy (:mod:`pipelines.training.noise_gate`).
    Then, by ``noise_action``: weight keeps a flagged row at p^``noise_weight_power``, p being the out-of-sample
    probability of its own label; margin weights every row by its margin to its class mates
    (:mod:`pipelines.training.class_margin`); drop gives flagged rows 0, but a class is never pruned
    below ``min_per_class`` (with so few examples a dropped class would be worse than a noisy one).
    """
    weights = np.ones(len(y))
    if params.noise_filter == "none":
        return NoiseWeights(weights, 0, "noise_filter none: every row weighs 1", acted=False)
    proba, issues = label_issues(embeddings, y, num_labels, params, seed)
    found = f"confident learning flagged {int(issues.sum())} of {len(y)} rows ({issues.mean():.0%})"
    # On clean data cleanlab still flags a few percent: hard but correct examples, whose loss at
    # 8-16 per class is worth more than the little noise removed. "auto" acts only when the
    # flagged rows say the batch is really noisy (``noise_gate``).
    if params.noise_filter == "auto":
        quiet = why_not_noisy(int(issues.sum()), len(y), params)
        if quiet:
            return NoiseWeights(weights, 0, f"{found}, {quiet}: every row weighs 1", acted=False)
    if params.noise_action == "margin":
        weights = margin_weights(embeddings, y, params.noise_margin_temperature)
        below = int((weights < 0.5).sum())
        return NoiseWeights(
            weights,
            below,
            f"{found}: every row weighted by its margin to its class mates (mean weight {weights.mean():.2f}; "
            f"{below} rows nearer another class, below one half)",
            acted=True,
        )
    if params.noise_action == "weight":
        weights[issues] = proba[issues, y[issues]] ** params.noise_weight_power
        return NoiseWeights(
            weights, int(issues.sum()), f"{found}: weighted down to p(label)^{params.noise_weight_power}", acted=True
        )
    weights[issues] = 0.0
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if (weights[members] > 0).sum() < params.min_per_class:
            weights[members] = 1.0
    return NoiseWeights(weights, 0, f"{found}: {int((weights == 0).sum())} dropped", acted=True)


def logreg_head(
    head: torch.nn.Linear,
    embeddings: np.ndarray,
    y: np.ndarray,
    C: float,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> None:
    """Head = a logistic-regression probe fit on the frozen embeddings ("linear probe, then fine-tune").

    The model then starts exactly where a frozen probe ends, so LoRA spends its steps on features
    the probe cannot reach instead of on fitting the head, and the head's first gradients do not
    distort the pretrained features (Kumar et al., 2022).
    """
    from sklearn.linear_model import LogisticRegression

    # balanced: after noise filtering the classes are uneven, and an unweighted probe starves the small ones.
    clf = LogisticRegression(C=C, max_iter=1000, class_weight="balanced", random_state=seed)
    clf.fit(embeddings, y, sample_weight=sample_weight)
    fitted_w, fitted_b = clf.coef_, clf.intercept_
    if len(clf.classes_) == 2:  # sklearn keeps one logit z for two classes; softmax([-z/2, z/2]) = sigmoid(z)
        fitted_w, fitted_b = (
            np.concatenate([-fitted_w / 2, fitted_w / 2]),
            np.concatenate([-fitted_b / 2, fitted_b / 2]),
        )
    # A class absent from these rows (a selection fold, or the rows the step budget caches) gets a logit
    # no row reaches, so the head keeps one output per label and predicts only the classes it saw.
    weight = np.zeros((head.out_features, fitted_w.shape[1]))
    bias = np.full(head.out_features, ABSENT_CLASS_LOGIT)
    weight[clf.classes_], bias[clf.classes_] = fitted_w, fitted_b
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(weight).to(head.weight))
        head.bias.copy_(torch.from_numpy(bias).to(head.bias))


def lr_lambda(steps: int, warmup_fraction: float):
    """Linear warm-up then linear decay to zero: a short warm-up keeps the high LR from wrecking the
    head initialisation in the first steps; decaying to zero lets the last steps settle."""
    warmup = max(1, int(steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor


def generalized_cross_entropy(logits: torch.Tensor, target: torch.Tensor, q: float) -> torch.Tensor:
    """(1 - p_y^q) / q (Zhang & Sabuncu, 2018): the gradient of each example is scaled by p_y^q, so
    examples the model finds implausible (mostly the wrong labels) pull far less than under
    cross-entropy, whose gradient grows as p_y shrinks. One loss per example."""
    p_y = torch.softmax(logits, dim=-1).gather(1, target.unsqueeze(1)).squeeze(1)
    return (1 - p_y.clamp(min=1e-7) ** q) / q


def loss_function(params: TrainParams):
    """``(logits, target) -> one loss per example``, so callers can weight examples and split batches."""
    if params.loss == "gce":
        return lambda logits, target: generalized_cross_entropy(logits, target, params.gce_q)
    return torch.nn.CrossEntropyLoss(reduction="none")


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's and numpy's global generators (LoRA's initialisation draws from torch's) and return a
    generator of its own for the step order."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


def batch_order(n: int, steps: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Index batches for ``steps`` steps: reshuffled each epoch, the last partial batch filled from the next."""
    flat: list[int] = []
    while len(flat) < steps * batch_size:
        flat.extend(torch.randperm(n, generator=generator).tolist())
    return [flat[s * batch_size : (s + 1) * batch_size] for s in range(steps)]


def backward_in_parts(
    idx: list[int], lengths: list[int], forward, loss_fn, target: torch.Tensor, weight: torch.Tensor
) -> float:
    """Accumulate the gradient of batch ``idx``'s weighted mean loss, running it in length-sorted parts.

    A random batch of short support messages pads to its longest text, so most of each matrix
    product would be padding. Losses are per example and mean pooling ignores padding, so the
    parts' weighted loss sums, divided by the batch size, give the whole batch's gradient (up to
    rounding) for about half the arithmetic (bench/train.py, both LoRA and full fine-tuning).
    ``forward(part) -> logits``; returns the batch loss.
    """
    total = 0.0
    for part in length_sorted_batches(idx, lengths, MICRO_BATCH):
        loss = (loss_fn(forward(part), target[part]) * weight[part]).sum() / len(idx)
        loss.backward()
        total += loss.item()
    return total


def _diverged(what: str, params: TrainParams) -> RefusedError:
    return RefusedError(
        f"training diverged: {what}; lower lr ({params.lr}) or head_lr ({params.head_lr}); nothing was written"
    )


def trainable_parts(peft_model) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """(LoRA weights, head weights) of a PEFT-wrapped classifier."""
    trainable = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    return [p for n, p in trainable if HEAD_MODULE not in n], [p for n, p in trainable if HEAD_MODULE in n]


def wrap_lora(model: MeanPoolClassifier, make_config: Callable):
    """``model`` (its head already the probe) wrapped in a fresh LoRA adapter, for :func:`train_steps`.
    ``make_config`` makes a fresh LoraConfig for each wrap, since peft writes into the one it is given."""
    from peft import get_peft_model

    return get_peft_model(model, make_config())


def take_step(optimiser: torch.optim.Optimizer, schedule, loss: float, bar=None) -> None:
    """The optimiser's step on the gradient just accumulated, the schedule's, and the progress bar's."""
    optimiser.step()
    schedule.step()
    if bar is not None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")


def train_steps(
    peft_model,
    params: TrainParams,
    start: int,
    data: EncodedData,
    rows: np.ndarray,
    y_all: np.ndarray,
    weights: np.ndarray,
    steps: int,
    generator: torch.Generator,
    bar=None,
):
    """Run ``steps`` optimiser steps of a LoRA-wrapped classifier on the cached states of ``rows``, with a
    fresh optimiser and a schedule of their own (``lr_lambda``); returns the PEFT model and the last batch
    loss (None with no steps).

    Raises:
        RefusedError: the loss or the weights stop being finite.
    """
    device = next(peft_model.parameters()).device
    y = torch.from_numpy(y_all[rows]).to(device)
    # mean 1, so a batch's weighted mean loss keeps the scale the learning rates were tuned for
    row_weight = torch.from_numpy(weights[rows] / weights[rows].mean()).float().to(device)
    inner = peft_model.base_model.model
    lora_params, head_params = trainable_parts(peft_model)
    optimiser = torch.optim.AdamW(
        [{"params": lora_params, "lr": params.lr}, {"params": head_params, "lr": params.head_lr}],
        weight_decay=params.weight_decay,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_lambda(steps, params.warmup_fraction))
    loss_fn = loss_function(params)
    peft_model.train()
    if bar is not None:
        bar.set_postfix_str("training")
    lengths = [data.hidden[r].shape[0] for r in rows]

    def forward(part: list[int]) -> torch.Tensor:
        hidden, mask = pad_batch([data.hidden[rows[i]] for i in part])
        return inner.classifier(inner.embed_from(hidden, mask, start))

    loss = None
    # A batch larger than the data would fill each step with the same rows many times over.
    for idx in batch_order(len(rows), steps, min(params.batch_size, len(rows)), generator):
        optimiser.zero_grad(set_to_none=True)
        loss = backward_in_parts(idx, lengths, forward, loss_fn, y, row_weight)
        if not math.isfinite(loss):
            raise _diverged(f"the training loss became {loss}", params)
        take_step(optimiser, schedule, loss, bar)
    if not all(torch.isfinite(p).all() for p in lora_params + head_params):
        raise _diverged("the adapter's weights are not finite", params)
    peft_model.eval()
    return peft_model, loss


def adapted_head(peft_model) -> torch.nn.Linear:
    """The head a PEFT-wrapped classifier trains and saves (its ``modules_to_save`` copy)."""
    wrapper = peft_model.base_model.model.classifier
    return wrapper.modules_to_save[wrapper.active_adapter]


def _embedded(peft_model, data: EncodedData, rows: np.ndarray, start: int) -> torch.Tensor:
    """The model's pooled, normalised embedding of each of ``rows`` from their cached states, on its device.

    Run in batches of similar length, so little of each is padding (padded positions are masked out of
    the pooling, so the order changes nothing but the rounding)."""
    inner = peft_model.base_model.model
    lengths = [data.hidden[r].shape[0] for r in rows]
    like = inner.classifier.weight
    with torch.inference_mode():
        out = torch.empty((len(rows), inner.classifier.in_features), dtype=like.dtype, device=like.device)
        for part in length_sorted_batches(list(range(len(rows))), lengths, ENCODE_BATCH):
            hidden, mask = pad_batch([data.hidden[rows[i]] for i in part])
            out[part] = inner.embed_from(hidden, mask, start)
    return out


def embed_cached(peft_model, data: EncodedData, rows: np.ndarray, start: int) -> np.ndarray:
    """:func:`_embedded` as float32 rows for scikit-learn (the head's refit)."""
    return _embedded(peft_model, data, rows, start).float().cpu().numpy()


def predict_cached(peft_model, data: EncodedData, rows: np.ndarray, start: int) -> np.ndarray:
    """Class index the model predicts for each of ``rows``, from their cached states."""
    with torch.inference_mode():
        return peft_model.base_model.model.classifier(_embedded(peft_model, data, rows, start)).argmax(-1).cpu().numpy()
