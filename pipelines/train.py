"""LoRA fine-tuning that wins on small, noisy data, and is cheap: LabeledBatch → adapter folder + TrainResult.

What makes it win (measured in bench/train.py on Banking77, 8–64 examples per class):
- A head on MEAN-POOLED, normalised embeddings that starts as a fitted logistic-regression probe
  on the frozen embeddings ("linear probe, then fine-tune"): training starts where a frozen probe
  ends, and the first gradients reach LoRA through a head that is already right instead of a
  random one that would distort the pretrained features. BERT's [CLS]+pooler head starts from
  random and needs far more data.
- A high learning rate (5e-3 for LoRA, ~10× peft examples) and a budget in optimiser STEPS with a floor:
  with 8 examples per class an epoch is a few dozen steps and LoRA at 5e-4 barely moves.
- LoRA on the upper blocks only (``lora_layers``), all their linear layers: the lower blocks stay
  frozen, so their output is computed ONCE per example and cached; each step then runs and
  back-propagates through the upper blocks only. That is where the saving against full
  fine-tuning comes from, and adapting fewer layers also memorises fewer wrong labels.
- Label noise, twice: confident learning (cleanlab) on out-of-sample probabilities of a logistic
  regression over the frozen embeddings (from the same single pass as the cache) flags the rows
  whose label is most likely wrong and weights them down by how implausible their label is, in the
  head's probe and in the loss. Down-weighting, not dropping: the rows a filter keeps are the easy
  ones, and the hard-but-right rows it would drop are the ones a few-shot model learns most from.
  Generalized cross-entropy then keeps the wrong labels from being memorised (cross-entropy pulls
  hardest on exactly those).
- Kept only where it helps: out-of-fold runs on the batch compare the probe with the fine-tuned
  model, and when fine-tuning does not clearly lead, the adapter is the probe with no LoRA delta
  (pipelines/train_select.py says why a small batch can end below its probe).

The saved adapter is plain PEFT (LoRA + ``classifier`` as modules_to_save) and loads with
:func:`pipelines.model.load_classifier`, which runs the full forward pass.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from pipelines.cost_meter import CostMeter
from pipelines.encoder_family import family_of, upper_blocks
from pipelines.model import HEAD_MODULE, LoadedBase, MeanPoolClassifier
from pipelines.noise_audit import out_of_sample_proba
from pipelines.records import LabeledBatch, Selection, TrainResult, listed
from pipelines.train_params import MAX_SEED, TrainParams
from pipelines.train_select import choose, default_recipe, plan_folds
from registry.adapter_folder import FOLDER_ENTRIES, REFERENCE_FILE, TRAIN_RESULT_FILE, WEIGHTS_FILE, AdapterMeta
from registry.errors import AlreadyExistsError, RefusedError, first_line

ABSENT_CLASS_LOGIT = -1e4
ENCODE_BATCH = 64
MICRO_BATCH = 8


@dataclass(frozen=True)
class Pricing:
    cost_per_hour: float
    currency: str


def check_batch(batch: LabeledBatch, params: TrainParams) -> list[str]:
    """The sorted label set, after refusing data that cannot train a classifier.

    Raises:
        RefusedError: a row with an empty text or label, a label with spaces around it, fewer than two
            classes, or a class below ``min_per_class`` examples.
    """
    # An empty text trains the model on [CLS][SEP] alone and an empty label becomes a class named
    # ''; `tailor validate` quarantines such batches, and training them directly must not slip past.
    blank = batch.blank_rows()
    if blank:
        raise RefusedError(f"{batch.source}: {len(blank)} row(s) have an empty text or label (ids {batch.named(blank)}); "
                           "remove them, or run `tailor validate`, which quarantines such a batch")  # fmt: skip
    # 'card_lost ' would train as a class of its own beside 'card_lost', and serve under that name.
    padded = sorted({label for label in batch.labels if label != label.strip()})
    if padded:
        raise RefusedError(f"{batch.source}: label(s) with spaces around them would train as classes of their own: "
                           f"{listed(list(map(repr, padded)))}; fix the file, or run `tailor validate`, which names "
                           "each row")  # fmt: skip
    counts = Counter(batch.labels)
    if len(counts) < 2:
        only = next(iter(counts), "none")
        raise RefusedError(f"{batch.source}: a classifier needs at least 2 classes; this batch has one ({only!r})"
                           if counts else f"{batch.source}: the batch is empty")  # fmt: skip
    small = sorted((label, n) for label, n in counts.items() if n < params.min_per_class)
    if small:
        counted = ", ".join(f"{label!r} has {n}" for label, n in small[:10])
        raise RefusedError(f"{batch.source}: too few examples: every class needs at least {params.min_per_class} "
                           f"(min_per_class); {counted}")  # fmt: skip
    return sorted(counts)


def prepare_output(out_dir: Path, force: bool) -> None:
    """Refuse to overwrite, unless forced and the folder holds only what a previous run wrote, and
    make sure the adapter can be written there: all before training, not after it.

    Raises:
        AlreadyExistsError: the folder exists and ``force`` is off.
        RefusedError: ``out_dir`` is a file or a device; forced, but the folder holds files a training
            run never writes (user data); or its parent folder cannot be written.
        OSError: a part of the path is a file.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise RefusedError(f"--out {out_dir} exists and is not a folder; Tailor will not replace it")
        if not force:
            raise AlreadyExistsError(f"output folder {out_dir} already exists; choose another --out or pass --force to "
                                     "replace it")  # fmt: skip
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in FOLDER_ENTRIES)
        if foreign:
            raise RefusedError(f"--force refused: {out_dir} holds files a training run does not write "
                               f"({', '.join(foreign[:5])}); move them away or choose another --out")  # fmt: skip
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # The finished adapter is staged beside out_dir and renamed into place: probe that now.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as err:
        raise RefusedError(f"cannot write the adapter into {out_dir.parent}: {err.strerror or err}") from None


def publish(staging: Path, out_dir: Path, force: bool) -> None:
    """Swap the finished folder into place so a crash never leaves half an adapter at ``out_dir``.

    Raises:
        AlreadyExistsError: ``out_dir`` appeared while this run trained (another run writing
            there) and ``force`` is off; both folders are left as they are.
    """
    if out_dir.exists() and not force:
        raise AlreadyExistsError(f"{out_dir} appeared while this run was training (another run writing there?); it is "
                                 f"left alone and this run's adapter is kept at {staging}: move it where you want it")  # fmt: skip
    if out_dir.exists():
        # A name of this run's own: a fixed one left by a run that died here would block every later --force.
        old = out_dir.with_name(f".{out_dir.name}.replaced.{os.getpid()}.{time.monotonic_ns()}")
        out_dir.rename(old)
        staging.rename(out_dir)
        shutil.rmtree(old)
    else:
        staging.rename(out_dir)


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    return torch.Generator().manual_seed(seed)


@dataclass
class EncodedData:
    """Each example's hidden states entering the first adapted block, plus its frozen embedding."""

    hidden: list[torch.Tensor | None]  # (tokens, hidden) per example, unpadded; None where not cached
    embeddings: np.ndarray  # (n, hidden) mean-pooled, normalised output of the frozen encoder


def rows_to_cache(n: int, params: TrainParams, seed: int) -> np.ndarray:
    """Which rows' hidden states the step loop can use: every row, unless there are more rows than
    ``max_steps × batch_size``, the most the loop ever visits.

    Each cached row holds up to ``max_length × hidden`` floats (~100 KB), so caching every row of a
    100k-row batch would hold ~10 GB that no step reads. Above the cap a seeded random subset is
    cached; every row's embedding still feeds the noise audit and the head's probe.
    """
    cap = params.max_steps * params.batch_size
    keep = np.ones(n, dtype=bool)
    if n > cap:
        keep[:] = False
        keep[np.random.default_rng(seed).choice(n, cap, replace=False)] = True
    return keep


def encode_frozen(model: MeanPoolClassifier, base: LoadedBase, texts: list[str], start: int, max_length: int,
                  keep: np.ndarray, progress=None) -> EncodedData:  # fmt: skip
    """One pass of the frozen encoder: cache block ``start``'s input where ``keep``, and keep every
    row's final embedding.

    Texts are sorted by length so each encoding batch pads little; results go back in input order.
    The cached states are views into one buffer: cloned one by one, small long-lived tensors among
    each batch's large transient ones fragment the heap (6,000 rows of ~43 tokens, 960 of them
    cached: the pass grew the process by 720 MB for a 63 MB cache; with the buffer by 300–350 MB).
    """
    lengths = base.token_lengths(texts, max_length)
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    size = model.encoder.config.hidden_size
    offsets = np.concatenate([[0], np.cumsum([lengths[i] if keep[i] else 0 for i in range(len(texts))])])
    like = next(model.parameters())
    buffer = torch.empty((int(offsets[-1]), size), dtype=like.dtype, device=like.device)
    hidden: list[torch.Tensor | None] = [buffer[offsets[i]:offsets[i + 1]] if keep[i] else None for i in range(len(texts))]
    embeddings = np.zeros((len(texts), size), dtype=np.float32)
    with torch.inference_mode():
        for begin in range(0, len(order), ENCODE_BATCH):
            idx = order[begin:begin + ENCODE_BATCH]
            enc = base.tokenize([texts[i] for i in idx], max_length)
            states = model.hidden_before(enc["input_ids"], enc["attention_mask"], start)
            pooled = model.embed_from(states, enc["attention_mask"], start)
            for row, i in enumerate(idx):
                if keep[i]:
                    hidden[i].copy_(states[row, :lengths[i]])
            embeddings[idx] = pooled.float().cpu().numpy()
            if progress is not None:
                progress.update(len(idx))
    return EncodedData(hidden=hidden, embeddings=embeddings)


def pad_batch(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad cached states to the longest in the batch; padded positions are masked out downstream."""
    length = max(s.shape[0] for s in states)
    hidden = states[0].new_zeros((len(states), length, states[0].shape[1]))
    mask = torch.zeros((len(states), length), dtype=torch.long, device=states[0].device)
    for row, s in enumerate(states):
        hidden[row, :s.shape[0]] = s
        mask[row, :s.shape[0]] = 1
    return hidden, mask


def noise_weights(embeddings: np.ndarray, y: np.ndarray, num_labels: int, params: TrainParams, seed: int) -> np.ndarray:
    """Each example's training weight: 1, or less (0 = dropped) where cleanlab flags its label as probably wrong.

    ``noise_action`` drop: flagged rows get 0, but a class is never pruned below ``min_per_class``
    (with so few examples a dropped class would be worse than a noisy one). weight: a flagged row
    keeps p^``noise_weight_power``, p being the out-of-sample probability of its own label.
    """
    weights = np.ones(len(y))
    if params.noise_filter == "none":
        return weights
    from cleanlab.filter import find_label_issues

    proba = out_of_sample_proba(embeddings, y, num_labels, seed=seed)
    # n_jobs=1: cleanlab's worker pool costs more than it saves on small batches, and its workers,
    # forked inside a Prefect task, die with a TerminationSignal traceback when the pool is closed.
    issues = find_label_issues(y, proba, filter_by=params.noise_filter_by, min_examples_per_class=params.min_per_class,
                               n_jobs=1)  # fmt: skip
    # On clean data cleanlab still flags a few percent: hard but correct examples, whose loss at
    # 8-16 per class is worth more than the little noise removed. "auto" acts only when the
    # flagged share says the batch is really noisy.
    if params.noise_filter == "auto" and issues.mean() < params.noise_auto_fraction:
        return weights
    if params.noise_action == "weight":
        weights[issues] = proba[issues, y[issues]] ** params.noise_weight_power
        return weights
    weights[issues] = 0.0
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if (weights[members] > 0).sum() < params.min_per_class:
            weights[members] = 1.0
    return weights


def logreg_head(head: torch.nn.Linear, embeddings: np.ndarray, y: np.ndarray, C: float, seed: int,
                sample_weight: np.ndarray | None = None) -> None:  # fmt: skip
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
        fitted_w, fitted_b = np.concatenate([-fitted_w / 2, fitted_w / 2]), np.concatenate([-fitted_b / 2, fitted_b / 2])
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


def batch_order(n: int, steps: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Index batches for ``steps`` steps: reshuffled each epoch, the last partial batch filled from the next."""
    flat: list[int] = []
    while len(flat) < steps * batch_size:
        flat.extend(torch.randperm(n, generator=generator).tolist())
    return [flat[s * batch_size:(s + 1) * batch_size] for s in range(steps)]


def micro_batches(idx: list[int], lengths: list[int], size: int = MICRO_BATCH) -> list[list[int]]:
    """One optimiser batch cut into length-sorted parts of ``size``."""
    ordered = sorted(idx, key=lambda i: lengths[i])
    return [ordered[s:s + size] for s in range(0, len(ordered), size)]


def backward_in_parts(idx: list[int], lengths: list[int], forward, loss_fn, target: torch.Tensor,
                      weight: torch.Tensor) -> float:  # fmt: skip
    """Accumulate the gradient of batch ``idx``'s weighted mean loss, running it in length-sorted parts.

    A random batch of short support messages pads to its longest text, so most of each matrix
    product would be padding. Losses are per example and mean pooling ignores padding, so the
    parts' weighted loss sums, divided by the batch size, give the whole batch's gradient (up to
    rounding) for about half the arithmetic (bench/train.py, both LoRA and full fine-tuning).
    ``forward(part) -> logits``; returns the batch loss.
    """
    total = 0.0
    for part in micro_batches(idx, lengths):
        loss = (loss_fn(forward(part), target[part]) * weight[part]).sum() / len(idx)
        loss.backward()
        total += loss.item()
    return total


def _diverged(what: str, params: TrainParams) -> RefusedError:
    return RefusedError(f"training diverged: {what}; lower lr ({params.lr}) or head_lr ({params.head_lr}); "
                        "nothing was written")


def trainable_parts(peft_model) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter]]:
    """(LoRA weights, head weights) of a PEFT-wrapped classifier."""
    trainable = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    return [p for n, p in trainable if HEAD_MODULE not in n], [p for n, p in trainable if HEAD_MODULE in n]


def fit_lora(model: MeanPoolClassifier, params: TrainParams, make_config: Callable, start: int, data: EncodedData,
             rows: np.ndarray, y_all: np.ndarray, weights: np.ndarray, steps: int, generator: torch.Generator,
             bar=None):  # fmt: skip
    """Wrap ``model`` (its head already the probe) in LoRA and run ``steps`` steps on the cached states of
    ``rows``; returns the PEFT model and the last batch loss (None with no steps). ``make_config`` makes
    a fresh LoraConfig for each wrap, since peft writes into the one it is given.

    Raises:
        RefusedError: the loss or the weights stop being finite.
    """
    from peft import get_peft_model

    device = next(model.parameters()).device
    y = torch.from_numpy(y_all[rows]).to(device)
    # mean 1, so a batch's weighted mean loss keeps the scale the learning rates were tuned for
    row_weight = torch.from_numpy(weights[rows] / weights[rows].mean()).float().to(device)
    peft_model = get_peft_model(model, make_config())
    inner = peft_model.base_model.model
    lora_params, head_params = trainable_parts(peft_model)
    optimiser = torch.optim.AdamW([{"params": lora_params, "lr": params.lr},
                                   {"params": head_params, "lr": params.head_lr}],
                                  weight_decay=params.weight_decay)  # fmt: skip
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
        optimiser.step()
        schedule.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
    if not all(torch.isfinite(p).all() for p in lora_params + head_params):
        raise _diverged("the adapter's weights are not finite", params)
    peft_model.eval()
    return peft_model, loss


def predict_cached(peft_model, data: EncodedData, rows: np.ndarray, start: int) -> np.ndarray:
    """Class index the model predicts for each of ``rows``, from their cached states."""
    inner = peft_model.base_model.model
    out = []
    with torch.inference_mode():
        for begin in range(0, len(rows), ENCODE_BATCH):
            hidden, mask = pad_batch([data.hidden[r] for r in rows[begin:begin + ENCODE_BATCH]])
            out.append(inner.classifier(inner.embed_from(hidden, mask, start)).argmax(-1).cpu().numpy())
    return np.concatenate(out)


def select_recipe(base: LoadedBase, num_labels: int, make_config: Callable, start: int, data: EncodedData, rows: np.ndarray,
                  y_all: np.ndarray, weights: np.ndarray, params: TrainParams, final_steps: int, seed: int,
                  bar=None) -> Selection:  # fmt: skip
    """Probe or fine-tuned, from out-of-fold runs of both recipes on ``rows`` (see ``pipelines.train_select``).

    Each fold fits the probe on its training rows, scores it on the held-out ones, then fine-tunes
    from that probe with the recipe's own step budget and scores again: the same rows, paired.
    """
    if params.select != "auto":
        return Selection(kept=params.select, reason=f"select: {params.select} in the train parameters", estimates={})
    default = default_recipe(len(rows), num_labels, params)
    plan = plan_folds(y_all[rows], params, final_steps, seed)
    if not plan.folds:
        return Selection(kept=default, default=default, estimates={}, folds_planned=plan.planned, fold_steps=plan.steps,
                         reason=f"no out-of-fold estimate ({plan.skipped}): the default for a batch of "
                                f"{len(rows)} rows is kept")  # fmt: skip
    if bar is not None:
        bar.total += plan.steps * len(plan.folds)
    held, predictions = [], {"probe": [], "lora": []}
    for number, (train_pos, held_pos) in enumerate(plan.folds):
        fold_rows, held_rows = rows[train_pos], rows[held_pos]
        model = MeanPoolClassifier(base.shared_copy(), num_labels).to(torch.device(base.device))
        logreg_head(model.classifier, data.embeddings[fold_rows], y_all[fold_rows], params.head_C, seed,
                    sample_weight=weights[fold_rows])  # fmt: skip
        with torch.no_grad():
            logits = model.classifier(torch.from_numpy(data.embeddings[held_rows]).to(model.classifier.weight))
        predictions["probe"].append(logits.argmax(-1).cpu().numpy())
        generator = seed_everything(seed + number + 1)
        peft_model, _ = fit_lora(model, params, make_config, start, data, fold_rows, y_all, weights, plan.steps,
                                 generator, bar)  # fmt: skip
        predictions["lora"].append(predict_cached(peft_model, data, held_rows, start))
        held.append(y_all[held_rows])
    selection = choose(np.concatenate(held), {k: np.concatenate(v) for k, v in predictions.items()}, params.select_z,
                       default)  # fmt: skip
    return selection.model_copy(update={"folds": len(plan.folds), "folds_planned": plan.planned,
                                        "fold_steps": plan.steps})  # fmt: skip


def lora_config(params: TrainParams, targets: list[str], blocks: range, layers_pattern: str):
    from peft import LoraConfig

    return LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha,
        lora_dropout=params.lora_dropout,
        target_modules=targets,
        layers_to_transform=list(blocks),
        layers_pattern=layers_pattern,
        modules_to_save=[HEAD_MODULE],
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_reference(path: Path, batch: LabeledBatch, rows: np.ndarray) -> None:
    """The exact rows trained on (after noise filtering): the drift reference for this adapter."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"] + (["group"] if batch.groups is not None else []))
        for i in rows:
            writer.writerow([batch.texts[i], batch.labels[i]] + ([batch.groups[i]] if batch.groups is not None else []))


def train(batch: LabeledBatch, out_dir: Path, *, base: LoadedBase, params: TrainParams, seed: int = 0,
          pricing: Pricing = Pricing(0.0, "EUR"), data_version: str | None = None, force: bool = False,
          progress: bool = False) -> TrainResult:  # fmt: skip
    """Train a LoRA adapter on ``batch`` and write the adapter folder to ``out_dir``.

    Raises:
        RefusedError: unusable data (an empty text or label, one class, too few examples), a seed
            out of range, an unsupported encoder, or a forced overwrite of a folder holding user files.
        AlreadyExistsError: ``out_dir`` exists and ``force`` is off.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    if not 0 <= seed <= MAX_SEED:
        raise RefusedError(f"seed {seed} is out of range; use 0 to {MAX_SEED}")
    labels = check_batch(batch, params)
    prepare_output(out_dir, force)
    index = {label: i for i, label in enumerate(labels)}
    y_all = np.array([index[label] for label in batch.labels])
    seed_everything(seed)
    meter = CostMeter(base.device)
    with meter:
        model = MeanPoolClassifier(base.shared_copy(), len(labels)).to(torch.device(base.device))
        family = family_of(model.encoder)
        num_layers = len(model.layers())
        adapted = params.lora_layers or upper_blocks(num_layers)
        if not 1 <= adapted <= num_layers:
            raise RefusedError(f"lora_layers={adapted} but the base model has {num_layers} blocks")
        start = num_layers - adapted
        known = {name.rsplit(".", 1)[-1] for name, _ in model.layers()[start].named_modules() if name}
        targets = list(params.lora_targets or [t for t in family.lora_targets if t in known])
        unknown = sorted(set(targets) - known)
        if unknown:  # peft says so only after every text was encoded, as a traceback
            raise RefusedError(f"lora_targets {unknown} name no module of the adapted blocks; they have: "
                               f"{', '.join(sorted(known))}")  # fmt: skip
        bar = tqdm(total=len(batch) + params.steps_for(len(batch)), desc="train", unit="step", disable=not progress, leave=False)
        bar.set_postfix_str("encoding")
        cached = rows_to_cache(len(batch), params, seed)
        data = encode_frozen(model, base, batch.texts, start, params.max_length, cached, progress=bar)
        weights = noise_weights(data.embeddings, y_all, len(labels), params, seed)
        kept = np.flatnonzero(weights > 0)
        rows = kept[cached[kept]]
        if not len(rows):
            raise RefusedError(f"the label-noise filter dropped all {int(cached.sum())} rows the step budget can visit "
                               f"(max_steps × batch_size = {params.max_steps * params.batch_size}); raise it")
        steps = params.steps_for(len(rows))
        make_config = partial(lora_config, params, targets, range(start, num_layers), family.layers_pattern)
        selection = select_recipe(base, len(labels), make_config, start, data, rows, y_all, weights, params, steps, seed, bar)
        # Fold runs draw from the global RNG (LoRA's initialisation): the final run starts from the seed
        # again, so it is the same whatever the folds did.
        generator = seed_everything(seed)
        if selection.kept == "probe":
            steps = 0
        logreg_head(model.classifier, data.embeddings[kept], y_all[kept], params.head_C, seed, sample_weight=weights[kept])
        bar.total = bar.n + steps
        # With no steps the adapter is the probe: LoRA's B starts at zero, so its delta is exactly none,
        # and the folder is a plain PEFT adapter like any other.
        peft_model, loss = fit_lora(model, params, make_config, start, data, rows, y_all, weights, steps, generator, bar)
        bar.close()
        lora_params, head_params = trainable_parts(peft_model)
        peft_model.eval()
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        umask = _umask()
        staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would keep a serving account of another user out
        try:
            try:
                peft_model.save_pretrained(str(staging), safe_serialization=True)
            except SafetensorError as err:  # safetensors reports a failed write (a full disk) in its own type
                raise OSError(errno.EIO, first_line(err), str(out_dir)) from None
            fp = base.fingerprint
            AdapterMeta(base_model_id=fp.model_id, base_model_weights_sha256=fp.weights_sha256,
                        base_model_tokenizer_sha256=fp.tokenizer_sha256, labels=labels,
                        max_length=params.max_length).write(staging)  # fmt: skip
            write_reference(staging / REFERENCE_FILE, batch, rows)
            for written in staging.rglob("*"):  # safetensors writes its files 0600, whatever the umask
                written.chmod((0o777 if written.is_dir() else 0o666) & ~umask)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    trainable = sum(p.numel() for p in lora_params + head_params)
    adapter_bytes = (staging / WEIGHTS_FILE).stat().st_size
    result = TrainResult(
        adapter_dir=str(out_dir),
        base_model_id=fp.model_id,
        base_model_sha256=fp.weights_sha256,
        labels=labels,
        # The values used, not the None that asked for the family's defaults: a rerun must not depend on them.
        params=params.model_dump(mode="json") | {"steps": steps, "lora_layers": adapted, "lora_targets": targets},
        seed=seed,
        device=base.device,
        train_examples=len(rows),
        dropped_examples=len(batch) - len(kept),
        uncached_examples=len(kept) - len(rows),
        downweighted_examples=int(((weights > 0) & (weights < 1)).sum()),
        data_version=data_version,
        encoding=batch.encoding,
        metrics={} if loss is None else {"final_train_loss": round(loss, 6)},
        selection=selection,
        cost=meter.report(trainable_params=trainable, adapter_bytes=adapter_bytes, examples=len(batch),
                          cost_per_hour=pricing.cost_per_hour, currency=pricing.currency),  # fmt: skip
        adapter_sha256=sha256_file(staging / WEIGHTS_FILE),
    )
    try:
        result.write_json(staging / TRAIN_RESULT_FILE)
        publish(staging, out_dir, force)
    except AlreadyExistsError:
        raise  # the finished adapter stays in staging, named in the message
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result
