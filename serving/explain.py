"""Which words made an adapter decide: integrated gradients per token, merged into words, with ERASER's checks.

Integrated gradients (Captum) run from a baseline where every word's token embeddings are the
padding token's ([CLS]/[SEP] kept) to the text's own, through the adapter, for the predicted
label's probability. The attributions of a text's tokens sum to its probability minus the
baseline's, up to the reported convergence error. Tokens are merged back into words for
languages written with spaces; a Japanese run is cut where the tokenizer cuts it (characters or
words, by the tokenizer's offsets), so the highlighted text reads as written.

Where gradients are not available (the ONNX backend, or Captum not installed) each span's
attribution is by occlusion instead: the probability lost when that span alone is removed.

Whatever the method, ERASER's comprehensiveness and sufficiency are measured on the text itself
(spans removed, or kept alone), with the same removal of as many random spans beside them.

Several texts explained at once (evaluation's holdout rows) share their forward and backward passes,
padded and masked: the same explanations as one at a time, in fewer and larger passes, which a busy
machine slows less (bench/RESULTS.md).

The model is never modified: no hooks are registered on it, so explaining is safe beside
requests that other threads answer from the same adapter.
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from registry.errors import RefusedError
from registry.explanations import Explanation, Faithfulness, Method, Span

# The fewest steps tried at which none of 36 holdout rows (sample, Banking77) got another rationale (top spans)
# than at 128 steps: at 24, 2 Banking77 rows did (bench/explain_steps.py; bench/RESULTS.md, 2026-12-07).
DEFAULT_STEPS = 32
TOP_FRACTION = 0.2  # ERASER's rationale: the top fifth of the spans (at least one)
RANDOM_DRAWS = 4
# Token positions (texts x steps x padded length) one forward and backward pass holds: the peak of one
# 128-token text at 32 steps before texts were batched, ~0.9 GB of activations for all-MiniLM-L6-v2. At
# the default max_length of 64 one text held half of that, so batching raises evaluate's peak by ~0.45 GB.
GRADIENT_TOKENS = 4096
# Kana, CJK ideographs and half-width katakana: runs written without spaces, split where the tokenizer splits.
_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")
_PIECE_MARKS = ("##", "\u2581", "\u0120")  # WordPiece continuation, SentencePiece and byte-level BPE word starts


@dataclass(frozen=True)
class Tokens:
    """One text as the model reads it: ids, and where each token starts in the text (None: special or unplaced)."""

    input_ids: list[int]
    starts: list[int | None]
    special: list[bool]
    truncated: bool


def _word_starts(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def units_of(text: str, token_starts: list[int | None]) -> list[tuple[int, int]]:
    """The spans attributions are shown on: words between spaces; inside a Japanese run, the
    stretches that begin where a token begins (characters or words, as the tokenizer cut them)."""
    starts = sorted({s for s in token_starts if s is not None})
    units = []
    for begin, end in _word_starts(text):
        if not _JAPANESE.search(text[begin:end]):
            units.append((begin, end))
            continue
        cuts = [begin] + [s for s in starts if begin < s < end] + [end]
        units += list(zip(cuts[:-1], cuts[1:]))
    return units


def _folded(text: str) -> tuple[str, list[int]]:
    """``text`` NFKC-normalised and lower-cased as tokenizers see it, with each character's original offset."""
    out, where = [], []
    for i, ch in enumerate(text):
        for f in unicodedata.normalize("NFKC", ch).lower():
            out.append(f)
            where.append(i)
    return "".join(out), where


def aligned_starts(text: str, tokens: list[str], special: list[bool]) -> list[int | None]:
    """Where each token starts in ``text``, found by reading the tokens in order (tokenizers without offsets,
    such as the MeCab tokenizer of the Japanese BERTs). A token not found (``[UNK]``) gets None."""
    folded, where = _folded(text)
    cursor, starts = 0, []
    for token, is_special in zip(tokens, special):
        piece = token
        for mark in _PIECE_MARKS:
            piece = piece.removeprefix(mark)
        found = folded.find(piece.lower(), cursor) if piece and not is_special else -1
        if found < 0:
            starts.append(None)
            continue
        starts.append(where[found])
        cursor = found + len(piece)
    return starts


def tokenize(base: Any, text: str, max_length: int) -> Tokens:
    """``text`` as the classifier reads it (truncated to ``max_length``), with each token's start in the text."""
    tokenizer = base.tokenizer
    fast = getattr(tokenizer, "is_fast", False)
    with base.tokenizer_lock:
        enc = tokenizer(
            text, truncation=True, max_length=max_length, return_special_tokens_mask=True, return_offsets_mapping=fast
        )
        whole = len(tokenizer(text)["input_ids"])
        pieces = None if fast else tokenizer.convert_ids_to_tokens(enc["input_ids"])
    special = [bool(s) for s in enc["special_tokens_mask"]]
    if fast:
        starts = [None if is_special or a == b else a for (a, b), is_special in zip(enc["offset_mapping"], special)]
        # A SentencePiece word start may cover the space before the word: the word is where it starts.
        starts = [None if s is None else _skip_spaces(text, s) for s in starts]
    else:
        starts = aligned_starts(text, pieces, special)
    return Tokens(list(enc["input_ids"]), starts, special, truncated=whole > len(enc["input_ids"]))


def _skip_spaces(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def _unit_of(units: list[tuple[int, int]], start: int | None) -> int | None:
    """The span holding ``start``, or the first after it; None for a token that starts nowhere or after every span."""
    if start is None:
        return None
    return next((index for index, (_, end) in enumerate(units) if start < end), None)


def merge(units: list[tuple[int, int]], tokens: Tokens, per_token: np.ndarray) -> np.ndarray:
    """Token attributions summed per span; a token that starts nowhere joins the next span that a token starts in
    (or the last one), so the spans' sum is the tokens' sum."""
    out = np.zeros(len(units))
    pending = 0.0
    last = None
    for start, value, is_special in zip(tokens.starts, per_token, tokens.special):
        index = None if is_special else _unit_of(units, start)
        if index is None:
            pending += float(value)
            continue
        out[index] += float(value) + pending
        pending, last = 0.0, index
    if units:
        out[last if last is not None else 0] += pending
    return out


def _without(text: str, units: list[tuple[int, int]], removed: set[int]) -> str:
    """``text`` with the characters of the ``removed`` spans deleted (spaces between words stay)."""
    keep, at = [], 0
    for index in sorted(removed):
        begin, end = units[index]
        keep.append(text[at:begin])
        at = end
    keep.append(text[at:])
    return "".join(keep)


def _why_no_gradients(classifier: Any) -> str:
    """Why integrated gradients cannot run for ``classifier`` ('' when they can)."""
    if not hasattr(classifier, "module"):
        return f"{type(classifier).__name__} computes no gradients (the ONNX backend): attributions by occlusion"
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        return "Captum is not installed (pip install -c infra/constraints.txt '.[explain]'): attributions by occlusion"
    return ""


def _passes(lengths: list[int], steps: int) -> list[list[int]]:
    """Rows (indices into ``lengths``) grouped for integration: in length order, so little is padding, and as
    many to a group as fit ``GRADIENT_TOKENS`` with every step in one pass (always at least one row)."""
    groups: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        if groups and (len(groups[-1]) + 1) * lengths[index] * steps <= GRADIENT_TOKENS:
            groups[-1].append(index)
        else:
            groups.append([index])
    return groups


def integrated_gradients(
    classifier: Any, texts: list[Tokens], targets: list[int], steps: int
) -> list[tuple[np.ndarray, float, float]]:
    """For each text: per-token attributions to the probability of its label in ``targets``, the baseline's
    probability, and the convergence delta (sum of attributions minus the probability's difference from the
    baseline's). Texts of similar length share forward and backward passes (:func:`_passes`)."""
    found: dict[int, tuple[np.ndarray, float, float]] = {}
    for group in _passes([len(t.input_ids) for t in texts], steps):
        found.update(zip(group, _integrate(classifier, [texts[i] for i in group], [targets[i] for i in group], steps)))
    return [found[i] for i in range(len(texts))]


def _integrate(
    classifier: Any, texts: list[Tokens], targets: list[int], steps: int
) -> list[tuple[np.ndarray, float, float]]:
    """:func:`integrated_gradients` for texts integrated together, padded to the longest and masked: padding
    is the same in the text and its baseline, so it gets no attribution and changes no other token's."""
    import torch
    from captum.attr import IntegratedGradients

    module = classifier.module
    device = classifier.base.device
    embedding = module.get_base_model().encoder.get_input_embeddings()
    pad = classifier.base.tokenizer.pad_token_id
    width = max(len(t.input_ids) for t in texts)
    ids = torch.full((len(texts), width), pad, device=device)
    baseline_ids = ids.clone()
    mask = torch.zeros_like(ids)
    for row, tokens in enumerate(texts):
        n = len(tokens.input_ids)
        ids[row, :n] = torch.tensor(tokens.input_ids)
        baseline_ids[row, :n] = torch.tensor([i if s else pad for i, s in zip(tokens.input_ids, tokens.special)])
        mask[row, :n] = 1

    def probability(embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return torch.softmax(
            module(input_ids=None, attention_mask=attention_mask, inputs_embeds=embeds).float(), dim=-1
        )

    rows = torch.arange(len(texts))
    with torch.no_grad():
        inputs, baseline = embedding(ids), embedding(baseline_ids)
        baseline_probability = probability(baseline, mask)[rows, targets].tolist()
    # A text longer than the budget holds at every step at once is integrated a few steps at a time.
    steps_per_pass = max(1, min(steps, GRADIENT_TOKENS // (len(texts) * width)))
    with torch.enable_grad():
        attributions, delta = IntegratedGradients(probability).attribute(
            inputs,
            baselines=baseline,
            target=targets,
            additional_forward_args=(mask,),
            n_steps=steps,
            internal_batch_size=len(texts) * steps_per_pass,
            return_convergence_delta=True,
        )
    per_token = attributions.sum(-1).detach().float().cpu().numpy()
    return [
        (per_token[row, : len(tokens.input_ids)], baseline_probability[row], float(delta[row]))
        for row, tokens in enumerate(texts)
    ]


def _target_probabilities(classifier: Any, variants: list[list[str]], targets: list[int]) -> list[np.ndarray]:
    """The probability of each text's label ``targets[i]`` for every text in ``variants[i]``, predicted in one call."""
    flat = [v for group in variants for v in group]
    if not flat:  # occlusion of texts of which the model read no span
        return [np.zeros(0) for _ in variants]
    p = classifier.predict_proba(flat)
    out, at = [], 0
    for group, target in zip(variants, targets):
        out.append(p[at : at + len(group), target])
        at += len(group)
    return out


def _faithfulness_variants(
    text: str, units: list[tuple[int, int]], scores: np.ndarray, usable: list[int]
) -> tuple[int, list[str]]:
    """ERASER's rationale size and the texts it is measured on: without the top spans, with only them, then
    without as many random spans (``RANDOM_DRAWS`` draws, seeded by the text)."""
    k = max(1, math.ceil(TOP_FRACTION * len(usable))) if usable else 0
    top = set(sorted(usable, key=lambda i: -scores[i])[:k])
    rng = np.random.default_rng(zlib.crc32(text.encode("utf-8")))
    draws = [set(rng.choice(usable, size=k, replace=False).tolist()) for _ in range(RANDOM_DRAWS)] if k else []
    variants = [_without(text, units, top), _without(text, units, set(range(len(units))) - top)]
    return k, variants + [_without(text, units, d) for d in draws]


def _faithfulness(k: int, probability: float, p: np.ndarray) -> Faithfulness:
    """ERASER's measures from the probabilities of :func:`_faithfulness_variants`' texts."""
    return Faithfulness(
        top_k=k,
        comprehensiveness=probability - float(p[0]),
        sufficiency=probability - float(p[1]),
        random_comprehensiveness=probability - float(np.mean(p[2:])) if len(p) > 2 else 0.0,
    )


def explain(classifier: Any, text: str, *, steps: int = DEFAULT_STEPS, method: Method | None = None) -> Explanation:
    """Explain the label ``classifier`` gives ``text``: :func:`explain_many` for one text.

    Raises:
        RefusedError: a blank text, fewer than 2 steps, or integrated gradients asked for where they cannot run.
    """
    return explain_many(classifier, [text], steps=steps, method=method)[0]


def explain_many(
    classifier: Any, texts: list[str], *, steps: int = DEFAULT_STEPS, method: Method | None = None
) -> list[Explanation]:
    """Explain the label ``classifier`` gives each of ``texts``; each explanation is the one :func:`explain`
    gives that text alone (up to float rounding), but the texts share their forward and backward passes.

    Args:
        classifier: an ``AdapterClassifier`` (integrated gradients) or anything with ``predict_proba``,
            ``labels``, ``meta.max_length`` and ``base`` (occlusion; the ONNX backend).
        texts: texts, none blank.
        steps: integration steps (each one forward and one backward pass of every text).
        method: None picks integrated gradients where gradients are available, else occlusion.

    Raises:
        RefusedError: a blank text, fewer than 2 steps, or integrated gradients asked for where they cannot run.
    """
    blank = [i for i, text in enumerate(texts) if not text.strip()]
    if blank:
        which = f" (text {blank[0] + 1} of {len(texts)})" if len(texts) > 1 else ""
        raise RefusedError(f"the text is empty or only whitespace{which}: there is nothing to explain")
    if steps < 2:
        raise RefusedError(f"steps must be at least 2, got {steps}")
    no_gradients = _why_no_gradients(classifier)
    if method == "integrated_gradients" and no_gradients:
        raise RefusedError(f"integrated gradients cannot run: {no_gradients}")
    if not texts:
        return []
    method = method or ("occlusion" if no_gradients else "integrated_gradients")
    tokens = [tokenize(classifier.base, text, classifier.meta.max_length) for text in texts]
    units = [units_of(text, t.starts) for text, t in zip(texts, tokens)]
    full = classifier.predict_proba(texts)
    targets = [int(p.argmax()) for p in full]
    probabilities = [float(p[target]) for p, target in zip(full, targets)]
    # Spans the model read (truncation drops the others).
    usable = [
        sorted({_unit_of(u, s) for s, sp in zip(t.starts, t.special) if not sp} - {None}) for u, t in zip(units, tokens)
    ]
    extras: list[dict[str, Any]]
    if method == "integrated_gradients":
        found = integrated_gradients(classifier, tokens, targets, steps)
        scores = [merge(u, t, per_token) for u, t, (per_token, _, _) in zip(units, tokens, found)]
        extras = [{"baseline_probability": b, "delta": d, "steps": steps} for _, b, d in found]
    else:
        occluded = [[_without(text, u, {i}) for i in read] for text, u, read in zip(texts, units, usable)]
        scores = [np.zeros(len(u)) for u in units]
        for score, read, p, probability in zip(
            scores, usable, _target_probabilities(classifier, occluded, targets), probabilities
        ):
            score[read] = probability - p
        extras = [{"method_note": no_gradients}] * len(texts)
    rationales = [_faithfulness_variants(*args) for args in zip(texts, units, scores, usable)]
    faithful = _target_probabilities(classifier, [variants for _, variants in rationales], targets)
    return [
        Explanation(
            text=text,
            label=classifier.labels[target],
            probability=probability,
            method=method,
            truncated=t.truncated,
            **extra,
            spans=[Span(text=text[b:e], start=b, end=e, attribution=float(v)) for (b, e), v in zip(u, score)],
            faithfulness=_faithfulness(k, probability, p),
        )
        for text, t, u, score, target, probability, extra, (k, _), p in zip(
            texts, tokens, units, scores, targets, probabilities, extras, rationales, faithful
        )
    ]
