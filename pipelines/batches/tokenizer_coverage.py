"""How well a base model's tokenizer covers a batch's text, in units that hold for every script.

Words split on whitespace mean nothing for Japanese or Chinese (a whole sentence is one "word"), so
coverage is measured on the tokenizer's own tokens: the share that are its unknown token (text the
model never sees) and the characters per token (text shredded into bytes or single characters
reaches the encoder as noise). An English vocabulary turns a quarter to a third of Japanese tokens
into ``[UNK]``; one made for the language turns almost none.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipelines.records import TokenizerCoverage

DOCS_PAGE = "docs/base-models.md"
# Tokenizing is cheap, but a batch can hold 100,000 rows: the share is estimated on the first ones.
MAX_TEXTS = 5000
MAX_UNKNOWN_EXAMPLES = 8


def measure(texts: list[str], tokenizer, base_model: str) -> TokenizerCoverage:
    """Coverage of ``texts`` (the first `MAX_TEXTS`) by ``tokenizer``."""
    texts = [t for t in texts[:MAX_TEXTS] if t.strip()]
    ids, offsets = _encode(texts, tokenizer)
    unk = tokenizer.unk_token_id
    tokens = sum(len(row) for row in ids)
    unknown = sum(row.count(unk) for row in ids) if unk is not None else 0
    missing: Counter[str] = Counter()
    for text, row, spans in zip(texts, ids, offsets):
        missing.update(text[a:b] for token, (a, b) in zip(row, spans) if token == unk and b > a)
    return TokenizerCoverage(
        base_model=base_model,
        texts=len(texts),
        tokens=tokens,
        unknown_token_share=round(unknown / tokens, 4) if tokens else 0.0,
        chars_per_token=round(sum(map(len, texts)) / tokens, 3) if tokens else 0.0,
        unknown_characters=[chars for chars, _ in missing.most_common(MAX_UNKNOWN_EXAMPLES)],
    )


def per_text(texts: list[str], tokenizer) -> tuple[list[float], list[float]]:
    """Per text, from one tokenizer call: the share of its tokens that are the unknown token, and its
    characters per token (both 0 for a text with no token).

    The two move apart: an English base reads English without unknown tokens (the share stays 0),
    but words it lacks are cut into more pieces (fewer characters per token), in any script.
    """
    ids, _ = _encode(texts, tokenizer)
    unk = tokenizer.unk_token_id
    shares = [row.count(unk) / len(row) if row and unk is not None else 0.0 for row in ids]
    return shares, [len(text) / len(row) if row else 0.0 for text, row in zip(texts, ids)]


def _encode(texts: list[str], tokenizer) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Token ids per text without special tokens, and each token's character span where the tokenizer
    gives one (fast tokenizers; a slow one leaves the spans empty)."""
    if not texts:
        return [], []
    fast = getattr(tokenizer, "is_fast", False)
    enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=fast)
    offsets = enc["offset_mapping"] if fast else [[] for _ in texts]
    return [list(row) for row in enc["input_ids"]], [[tuple(span) for span in row] for row in offsets]


def refusal(coverage: TokenizerCoverage, max_unknown_share: float, min_chars_per_token: float) -> str | None:
    """Why the base model cannot read the batch, in a sentence the user can act on; None when it can
    (or when the batch has no text to measure: the suite reports empty texts itself)."""
    if coverage.tokens == 0:
        return None
    problems = []
    if coverage.unknown_token_share > max_unknown_share:
        seen = f" (e.g. {' '.join(coverage.unknown_characters)})" if coverage.unknown_characters else ""
        problems.append(
            f"{coverage.unknown_token_share:.0%} of its tokens are unknown to the tokenizer{seen}, over "
            f"data.max_unknown_token_share {max_unknown_share:.0%}"
        )
    if coverage.chars_per_token < min_chars_per_token:
        problems.append(
            f"it is cut into {coverage.chars_per_token:.2f} characters per token, under "
            f"data.min_chars_per_token {min_chars_per_token}"
        )
    if not problems:
        return None
    return (
        f"the base model {coverage.base_model} cannot read this text: {'; '.join(problems)}. Use a base model "
        f"made for the batch's language (see {DOCS_PAGE}) and name it in the base_model setting or with "
        "--base-model"
    )


def measure_folder(texts: list[str], model_dir: Path, base_model: str | None = None) -> TokenizerCoverage:
    """`measure` with the tokenizer of the base model in ``model_dir`` (loaded offline, no remote code).

    Raises:
        NotFoundError, ConfigError, RefusedError: the folder is not a loadable base model.
    """
    from serving.base_cache import base_tokenizer

    tokenizer = base_tokenizer(Path(model_dir))
    with tokenizer.lock:
        return measure(texts, tokenizer.tokenizer, base_model or str(model_dir))
