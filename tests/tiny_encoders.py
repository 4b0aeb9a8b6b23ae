"""Tiny random-weight encoders of each family Tailor supports, with a tokenizer trained on Japanese text.

Built by the tests themselves in a few seconds (nothing is downloaded): a ``transformers`` config
saved with ``save_pretrained`` as safetensors, and a tokenizer trained with the ``tokenizers``
library on the Japanese sample batch. They prove the code paths (layer caching, LoRA targets,
serving), not accuracy.
"""

from __future__ import annotations

import csv
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"
SPECIALS = {
    "unk_token": "[UNK]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}
# Each family, plus a BERT whose tokenizer splits words with MeCab (fugashi + unidic-lite) first, as
# the Japanese BERTs of Tohoku University (cl-tohoku/bert-base-japanese-v3) do.
KINDS = ("bert", "xlm-roberta", "electra", "deberta-v2", "deberta-v2-conv", "modernbert", "bert-ja-mecab")


def japanese_texts() -> list[str]:
    texts = []
    for name in ("train.csv", "holdout.csv"):
        with (DATA / "sample_ja" / name).open(encoding="utf-8", newline="") as handle:
            texts += [row["text"] for row in csv.DictReader(handle)]
    return texts


def train_tokenizer(kind: str, vocab_size: int = 600):
    """A fast tokenizer trained on the Japanese samples: ``wordpiece`` (BERT-style, characters
    split off as CJK BERT does) or ``unigram`` (SentencePiece-style, what ModernBERT-ja and XLM-R use)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIALS.values())
    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials)
    else:
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="[UNK]")
    tok.normalizer = normalizers.NFKC()
    tok.train_from_iterator(japanese_texts(), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_input_names=["input_ids", "attention_mask"], **SPECIALS)


def mecab_tokenizer(folder: Path):
    """A ``BertJapaneseTokenizer`` (MeCab with unidic-lite words, then WordPiece) whose vocabulary is
    the sample batches' words and characters (``##`` pieces too), written into ``folder``."""
    from transformers import BertJapaneseTokenizer
    from transformers.models.bert_japanese.tokenization_bert_japanese import MecabTokenizer

    mecab = MecabTokenizer(do_lower_case=False, mecab_dic="unidic_lite")
    words = {word for text in japanese_texts() for word in mecab.tokenize(text)}
    chars = {ch for word in words for ch in word}
    vocab = [*SPECIALS.values(), *sorted(words | chars), *sorted(f"##{ch}" for ch in chars)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    return BertJapaneseTokenizer(
        str(folder / "vocab.txt"),
        word_tokenizer_type="mecab",
        subword_tokenizer_type="wordpiece",
        mecab_kwargs={"mecab_dic": "unidic_lite"},
    )


def _config(family: str, tokenizer):
    import transformers as tf

    vocab_size, pad_id = len(tokenizer), tokenizer.pad_token_id
    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=pad_id,
    )
    if family in ("bert", "bert-ja-mecab"):
        return tf.BertConfig(**common)
    if family == "xlm-roberta":
        return tf.XLMRobertaConfig(**{**common, "max_position_embeddings": 130})
    if family == "electra":
        return tf.ElectraConfig(**common, embedding_size=16)  # its own embedding width, projected up
    if family in ("deberta-v2", "deberta-v2-conv"):
        # DeBERTa-v3 shares the attention's key/query projections with the positions; v2 has its own
        # (pos_key_proj, pos_query_proj) and a convolution beside the first block.
        v2 = {"share_att_key": False, "conv_kernel_size": 3} if family == "deberta-v2-conv" else {"share_att_key": True}
        return tf.DebertaV2Config(
            **common,
            relative_attention=True,
            position_buckets=16,
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            norm_rel_ebd="layer_norm",
            **v2,
        )
    if family == "modernbert":
        return tf.ModernBertConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
            pad_token_id=pad_id,
            global_attn_every_n_layers=2,
            local_attention=16,
            bos_token_id=tokenizer.cls_token_id,
            cls_token_id=tokenizer.cls_token_id,
            eos_token_id=tokenizer.sep_token_id,
            sep_token_id=tokenizer.sep_token_id,
        )
    raise ValueError(family)


def build(family: str, folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny random-weight ``family`` encoder (one of ``KINDS``) with a Japanese tokenizer into ``folder``."""
    import torch
    from transformers import AutoModel

    folder = Path(folder)
    if family == "bert-ja-mecab":
        tokenizer = mecab_tokenizer(folder)
    else:
        unigram = family in ("modernbert", "xlm-roberta", "deberta-v2", "deberta-v2-conv")
        tokenizer = train_tokenizer("unigram" if unigram else "wordpiece")
    torch.manual_seed(seed)
    model = AutoModel.from_config(_config(family, tokenizer))
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


def tiny_adapter(kind: str, root: Path):
    """A loaded ``kind`` adapter trained for two steps on the Japanese sample over a tiny encoder (a few seconds)."""
    from pipelines.batches.read import read_batch
    from pipelines.policy import DataPolicy
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train
    from serving.model import load_base, load_classifier

    base = load_base(build(kind, root / kind), model_id=kind, cache_dir=root / "cache")
    train(
        read_batch(DATA / "sample_ja" / "train.csv", max_bytes=DataPolicy().max_file_bytes),
        root / f"adapter-{kind}",
        base=base,
        params=TrainParams(min_steps=2, max_steps=2, noise_filter="none", max_length=48, select="lora"),
    )
    return load_classifier(root / f"adapter-{kind}", base)
