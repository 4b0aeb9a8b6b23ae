"""The cache of frozen lower-block states: the lower blocks run ONCE per example, every training step
runs and back-propagates through the upper (adapted) blocks only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipelines.training.params import TrainParams
from serving.embeddings import length_sorted_batches
from serving.model import LoadedBase, MeanPoolClassifier

ENCODE_BATCH = 64


@dataclass
class EncodedData:
    """Each example's hidden states entering the first adapted block, plus its frozen embedding (None for an
    encoding without ``pool``: :func:`encode_frozen`)."""

    hidden: list[torch.Tensor | None]  # (tokens, hidden) per example, unpadded; None where not cached
    embeddings: np.ndarray | None  # (n, hidden) mean-pooled, normalised output of the frozen encoder; None: not run


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


def encode_frozen(
    model: MeanPoolClassifier,
    base: LoadedBase,
    texts: list[str],
    start: int,
    max_length: int,
    keep: np.ndarray,
    progress=None,
    *,
    pool: bool = True,
) -> EncodedData:
    """One pass of the frozen encoder: cache block ``start``'s input where ``keep`` and, with ``pool``, keep
    every row's final embedding. Without it the blocks from ``start`` are not run: the contrastive step trains
    them itself and never reads the frozen embeddings.

    Texts are sorted by length so each encoding batch pads little; results go back in input order.
    The cached states are views into one buffer: cloned one by one, small long-lived tensors among
    each batch's large transient ones fragment the heap (6,000 rows of ~43 tokens, 960 of them
    cached: the pass grew the process by 720 MB for a 63 MB cache; with the buffer by 300–350 MB).
    """
    lengths = base.token_lengths(texts, max_length)
    size = model.encoder.config.hidden_size
    offsets = np.concatenate([[0], np.cumsum([lengths[i] if keep[i] else 0 for i in range(len(texts))])])
    like = next(model.parameters())
    buffer = torch.empty((int(offsets[-1]), size), dtype=like.dtype, device=like.device)
    hidden: list[torch.Tensor | None] = [
        buffer[offsets[i] : offsets[i + 1]] if keep[i] else None for i in range(len(texts))
    ]
    embeddings = np.zeros((len(texts), size), dtype=np.float32) if pool else None
    with torch.inference_mode():
        for idx in length_sorted_batches(list(range(len(texts))), lengths, ENCODE_BATCH):
            enc = base.tokenize([texts[i] for i in idx], max_length)
            states = model.hidden_before(enc["input_ids"], enc["attention_mask"], start)
            for row, i in enumerate(idx):
                if keep[i]:
                    hidden[i].copy_(states[row, : lengths[i]])
            if embeddings is not None:
                embeddings[idx] = model.embed_from(states, enc["attention_mask"], start).float().cpu().numpy()
            if progress is not None:
                progress.update(len(idx))
    return EncodedData(hidden=hidden, embeddings=embeddings)


def pad_batch(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad cached states to the longest in the batch; padded positions are masked out downstream."""
    length = max(s.shape[0] for s in states)
    hidden = states[0].new_zeros((len(states), length, states[0].shape[1]))
    mask = torch.zeros((len(states), length), dtype=torch.long, device=states[0].device)
    for row, s in enumerate(states):
        hidden[row, : s.shape[0]] = s
        mask[row, : s.shape[0]] = 1
    return hidden, mask
