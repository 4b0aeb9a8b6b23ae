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
  whose label is most likely wrong; when enough are, every row is weighted by its margin to its class
  mates (``class_margin``), in the head's probe, the selection's folds and the loss. Down-weighting,
  not dropping: the rows a filter keeps are the easy ones, and the hard-but-right rows it would drop
  are the ones a few-shot model learns most from.
  Generalized cross-entropy then keeps the wrong labels from being memorised (cross-entropy pulls
  hardest on exactly those).
- Kept only where it helps: out-of-fold runs on the batch compare the probe with the fine-tuned
  model, and when fine-tuning does not clearly lead, the adapter is the probe
  (pipelines/training/select.py says why a small batch can end below its probe): the probe itself, with no
  LoRA delta, or, with ``contrastive: true``, refitted on features a contrastive step adapted on pairs of rows
  where the batch has few classes and the label-noise filter left it alone (pipelines/training/contrastive.py;
  off by default: it lost to the probe on most tasks it was not tuned on).

The saved adapter is plain PEFT (LoRA + ``classifier`` as modules_to_save) and loads with
:func:`serving.model.load_classifier`, which runs the full forward pass.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError

from pipelines.records import LabeledBatch, TrainResult, listed
from pipelines.training.cache import encode_frozen, rows_to_cache
from pipelines.training.contrastive import contrastive_adapter, contrastive_blocks
from pipelines.training.cost_meter import CostMeter
from pipelines.training.objective import (
    adapted_head,
    embed_cached,
    logreg_head,
    noise_weights,
    seed_everything,
    train_steps,
    trainable_parts,
    wrap_lora,
)
from pipelines.training.params import MAX_SEED, TrainParams
from pipelines.training.publish import current_umask, prepare_output, publish, sha256_file, write_reference
from pipelines.training.select import may_run_contrastive, with_contrastive
from pipelines.training.select_runs import select_recipe
from registry.adapter_folder import REFERENCE_FILE, TRAIN_RESULT_FILE, WEIGHTS_FILE, AdapterMeta
from registry.errors import AlreadyExistsError, RefusedError, first_line
from serving.encoder_family import family_of, upper_blocks
from serving.model import HEAD_MODULE, LoadedBase, MeanPoolClassifier


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
        raise RefusedError(
            f"{batch.source}: {len(blank)} row(s) have an empty text or label (ids {batch.named(blank)}); "
            "remove them, or run `tailor validate`, which quarantines such a batch"
        )
    # 'card_lost ' would train as a class of its own beside 'card_lost', and serve under that name.
    padded = sorted({label for label in batch.labels if label != label.strip()})
    if padded:
        raise RefusedError(
            f"{batch.source}: label(s) with spaces around them would train as classes of their own: "
            f"{listed(list(map(repr, padded)))}; fix the file, or run `tailor validate`, which names "
            "each row"
        )
    counts = Counter(batch.labels)
    if len(counts) < 2:
        only = next(iter(counts), "none")
        raise RefusedError(
            f"{batch.source}: a classifier needs at least 2 classes; this batch has one ({only!r})"
            if counts
            else f"{batch.source}: the batch is empty"
        )
    small = sorted((label, n) for label, n in counts.items() if n < params.min_per_class)
    if small:
        counted = ", ".join(f"{label!r} has {n}" for label, n in small[:10])
        raise RefusedError(
            f"{batch.source}: too few examples: every class needs at least {params.min_per_class} "
            f"(min_per_class); {counted}"
        )
    return sorted(counts)


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


def train(
    batch: LabeledBatch,
    out_dir: Path,
    *,
    base: LoadedBase,
    params: TrainParams,
    seed: int = 0,
    pricing: Pricing = Pricing(0.0, "EUR"),
    data_version: str | None = None,
    force: bool = False,
    progress: bool = False,
) -> TrainResult:
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
        contrastive_adapted = contrastive_blocks(params, num_layers)
        if contrastive_adapted > num_layers and may_run_contrastive(params, len(labels)):
            raise RefusedError(
                f"contrastive_layers={contrastive_adapted} but the base model has {num_layers} blocks; "
                f"set it to at most {num_layers}, or null for every block"
            )
        unknown = sorted(set(targets) - known)
        if unknown:  # peft says so only after every text was encoded, as a traceback
            raise RefusedError(
                f"lora_targets {unknown} name no module of the adapted blocks; they have: {', '.join(sorted(known))}"
            )
        bar = tqdm(
            total=len(batch) + params.steps_for(len(batch)),
            desc="train",
            unit="step",
            disable=not progress,
            leave=False,
        )
        bar.set_postfix_str("encoding")
        cached = rows_to_cache(len(batch), params, seed)
        data = encode_frozen(model, base, batch.texts, start, params.max_length, cached, progress=bar)
        noise = noise_weights(data.embeddings, y_all, len(labels), params, seed)
        weights = noise.weights
        kept = np.flatnonzero(weights > 0)
        rows = kept[cached[kept]]
        if not len(rows):
            raise RefusedError(
                f"the label-noise filter dropped all {int(cached.sum())} rows the step budget can visit "
                f"(max_steps × batch_size = {params.max_steps * params.batch_size}); raise it"
            )
        steps = params.steps_for(len(rows))

        def config_from(first: int):  # a fresh LoraConfig for blocks first.. (peft writes into the one it gets)
            return lora_config(params, targets, range(first, num_layers), family.layers_pattern)

        make_config = partial(config_from, start)
        selection, fold_model = select_recipe(
            base,
            len(labels),
            make_config,
            start,
            data,
            rows,
            y_all,
            weights,
            params,
            steps,
            seed,
            bar,
            every_kept_cached=len(rows) == len(kept),
        )
        selection = with_contrastive(selection, params, len(labels), noisy=noise.acted)
        # Fold runs draw from the global RNG (LoRA's initialisation): the final run's steps start from the seed
        # again, so a run from the probe is the same whatever the folds did (one continuing a fold depends on
        # which fold that was, fixed by the seed).
        generator = seed_everything(seed)
        if fold_model is not None:
            steps = selection.continued_steps
            bar.total = bar.n + steps
            # The fold's head knows (k−1)/k of each class's rows: refitting it as a probe on the fold's
            # adapted embeddings of every row puts all of them in the decision boundary at once, which
            # steps alone did not (Banking77 8/class, 3 seeds: 0.827 without the refit, 0.844 with it,
            # 0.845 trained from the probe; bench/RESULTS.md). The fold's schedule decayed to zero, so the
            # steps after it get the recipe's warm-up and decay of their own, with a fresh optimiser.
            logreg_head(
                adapted_head(fold_model),
                embed_cached(fold_model, data, rows, start),
                y_all[rows],
                params.head_C,
                seed,
                sample_weight=weights[rows],
            )
            peft_model, loss = train_steps(fold_model, params, start, data, rows, y_all, weights, steps, generator, bar)
        elif selection.kept == "contrastive":
            peft_model, loss, steps = contrastive_adapter(
                model,
                base,
                batch.texts,
                rows,
                y_all,
                weights,
                params,
                config_from,
                generator,
                seed,
                bar,
            )
        else:
            if selection.kept == "probe":
                steps = 0
            logreg_head(
                model.classifier, data.embeddings[kept], y_all[kept], params.head_C, seed, sample_weight=weights[kept]
            )
            bar.total = bar.n + steps
            # With no steps the adapter is the probe: LoRA's B starts at zero, so its delta is exactly none,
            # and the folder is a plain PEFT adapter like any other.
            peft_model, loss = train_steps(
                wrap_lora(model, make_config), params, start, data, rows, y_all, weights, steps, generator, bar
            )
        bar.close()
        lora_params, head_params = trainable_parts(peft_model)
        peft_model.eval()
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        umask = current_umask()
        staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 would keep a serving account of another user out
        try:
            try:
                peft_model.save_pretrained(str(staging), safe_serialization=True)
            except SafetensorError as err:  # safetensors reports a failed write (a full disk) in its own type
                raise OSError(errno.EIO, first_line(err), str(out_dir)) from None
            fp = base.fingerprint
            AdapterMeta(
                base_model_id=fp.model_id,
                base_model_weights_sha256=fp.weights_sha256,
                base_model_tokenizer_sha256=fp.tokenizer_sha256,
                labels=labels,
                max_length=params.max_length,
            ).write(staging)
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
        params=params.model_dump(mode="json")
        | {"steps": steps, "lora_layers": adapted, "lora_targets": targets, "contrastive_layers": contrastive_adapted},
        seed=seed,
        device=base.device,
        train_examples=len(rows),
        dropped_examples=len(batch) - len(kept),
        uncached_examples=len(kept) - len(rows),
        downweighted_examples=noise.downweighted,
        noise_handling=noise.note,
        data_version=data_version,
        encoding=batch.encoding,
        # named for what it measures: the contrastive step's pair loss is on another scale than the classifier's
        metrics={}
        if loss is None
        else {("final_contrastive_loss" if selection.kept == "contrastive" else "final_train_loss"): round(loss, 6)},
        selection=selection,
        cost=meter.report(
            trainable_params=trainable,
            adapter_bytes=adapter_bytes,
            examples=len(batch),
            cost_per_hour=pricing.cost_per_hour,
            currency=pricing.currency,
        ),
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
