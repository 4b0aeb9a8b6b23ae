"""What Tailor must know of each encoder family to cache its lower blocks and adapt its upper ones.

Training runs the frozen lower blocks once per example, caches the hidden states entering the first
adapted block, and then runs only the upper blocks each step. That needs the family's layout: where
its blocks are, how a block is called (the mask it takes, relative or rotary positions), what runs
after the last block, and the names of a block's linear layers for LoRA. The full forward pass
(serving, evaluation, embeddings) goes through the model itself and needs none of this.

Families: BERT-style (BERT, RoBERTa, XLM-R / multilingual-e5, ELECTRA), DeBERTa-v2/v3 and ModernBERT
(cl-nagoya/ruri-v3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from registry.errors import RefusedError

# A block runner: (encoder, hidden states entering the blocks, attention mask (batch, tokens), block
# range) → hidden states leaving the last block of the range.
Runner = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, slice], torch.Tensor]


@dataclass(frozen=True)
class EncoderFamily:
    name: str
    layers_pattern: str  # PEFT's name of the ModuleList holding the blocks
    lora_targets: tuple[str, ...]  # every linear layer a block of the family may have
    blocks: Callable[[torch.nn.Module], torch.nn.ModuleList]
    embed: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # (encoder, ids, mask) → hidden
    run: Runner
    finish: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] = lambda encoder, hidden: hidden


def upper_blocks(num_blocks: int) -> int:
    """How many upper blocks to adapt by default: a third of the depth (2 of MiniLM's 6, 4 of BERT-base's 12)."""
    return max(1, round(num_blocks / 3))


# --- BERT, RoBERTa, XLM-R, ELECTRA -----------------------------------------------------------------


def _bert_embed(encoder, input_ids, attention_mask):
    hidden = encoder.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids))
    project = getattr(encoder, "embeddings_project", None)  # ELECTRA: narrower embeddings, projected up
    return project(hidden) if project is not None else hidden


def _bert_run(encoder, hidden, attention_mask, blocks: slice):
    from transformers.masking_utils import create_bidirectional_mask

    mask = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=attention_mask)
    for layer in encoder.encoder.layer[blocks]:
        hidden = layer(hidden, mask)
    return hidden


BERT = EncoderFamily(
    "bert", "layer", ("query", "key", "value", "dense"), lambda e: e.encoder.layer, _bert_embed, _bert_run
)


# --- DeBERTa-v2 / v3 -------------------------------------------------------------------------------


def _deberta_embed(encoder, input_ids, attention_mask):
    return encoder.embeddings(input_ids=input_ids, token_type_ids=torch.zeros_like(input_ids), mask=attention_mask)


def _deberta_run(encoder, hidden, attention_mask, blocks: slice):
    stack = encoder.encoder
    mask = stack.get_attention_mask(attention_mask)
    relative_pos = stack.get_rel_pos(hidden)
    rel_embeddings = stack.get_rel_embedding()
    first = hidden
    for index in range(*blocks.indices(len(stack.layer))):
        out, _ = stack.layer[index](hidden, mask, relative_pos=relative_pos, rel_embeddings=rel_embeddings)
        # As DebertaV2Encoder does: the optional convolution joins the first block's output.
        hidden = stack.conv(first, out, attention_mask) if index == 0 and stack.conv is not None else out
    return hidden


# pos_*_proj exist only where share_att_key is false (DeBERTa-v2); training adapts the targets a block has.
DEBERTA = EncoderFamily(
    "deberta-v2",
    "layer",
    ("query_proj", "key_proj", "value_proj", "pos_key_proj", "pos_query_proj", "dense"),
    lambda e: e.encoder.layer,
    _deberta_embed,
    _deberta_run,
)


# --- ModernBERT ------------------------------------------------------------------------------------


def _modernbert_embed(encoder, input_ids, attention_mask):
    return encoder.embeddings(input_ids=input_ids)


def _modernbert_run(encoder, hidden, attention_mask, blocks: slice):
    from transformers.masking_utils import create_bidirectional_mask, create_bidirectional_sliding_window_mask

    kwargs = {"config": encoder.config, "inputs_embeds": hidden, "attention_mask": attention_mask}
    masks = {
        "full_attention": create_bidirectional_mask(**kwargs),
        "sliding_attention": create_bidirectional_sliding_window_mask(**kwargs),
    }
    positions = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
    rotary = {kind: encoder.rotary_emb(hidden, positions, kind) for kind in set(encoder.config.layer_types)}
    for layer in encoder.layers[blocks]:
        hidden = layer(
            hidden, attention_mask=masks[layer.attention_type], position_embeddings=rotary[layer.attention_type]
        )
    return hidden


MODERNBERT = EncoderFamily(
    "modernbert",
    "layers",
    ("Wqkv", "Wo", "Wi"),
    lambda e: e.layers,
    _modernbert_embed,
    _modernbert_run,
    finish=lambda encoder, hidden: encoder.final_norm(hidden),
)


FAMILIES = {
    "bert": BERT,
    "roberta": BERT,
    "xlm-roberta": BERT,
    "camembert": BERT,
    "electra": BERT,
    "deberta-v2": DEBERTA,
    "modernbert": MODERNBERT,
}


def family_of(encoder: torch.nn.Module) -> EncoderFamily:
    """The family of a loaded encoder, by its config's ``model_type``.

    Raises:
        RefusedError: a family Tailor does not know how to cache and adapt.
    """
    model_type = getattr(encoder.config, "model_type", None)
    if model_type not in FAMILIES:
        raise RefusedError(
            f"base model type {model_type!r} ({type(encoder).__name__}) is not one Tailor trains; "
            f"supported: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[model_type]
