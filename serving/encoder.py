"""The base encoder, loaded offline and safely, and its frozen mean-pooled sentence embeddings.

Used wherever a step needs the base model's view of text without an adapter: the label-noise
audit, embedding drift, the frozen-encoder baseline and head initialisation.
"""

from __future__ import annotations

import json
from pathlib import Path

from registry.errors import ConfigError, NotFoundError, RefusedError, first_line

PICKLE_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "model.ckpt", "flax_model.msgpack")
TOKENIZER_VOCAB_FILES = ("tokenizer.json", "vocab.txt", "sentencepiece.bpe.model", "spiece.model", "vocab.json")


def check_model_dir(model_dir: Path) -> Path:
    """Refuse a base-model folder we must not or cannot load.

    Raises:
        NotFoundError: the folder, its config.json, its tokenizer vocabulary or its safetensors
            weights are missing.
        ConfigError: config.json is not a JSON object.
        RefusedError: the model needs remote code, or ships only pickle weights.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise NotFoundError(
            f"base model folder {model_dir} {'is not a folder' if model_dir.exists() else 'does not exist'}"
        )
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise NotFoundError(f"base model folder {model_dir} has no config.json (not a Hugging Face model folder)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"base model {config_file} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"base model {config_file} is not a JSON object (a Hugging Face model config)")
    if "auto_map" in config:
        raise RefusedError(f"base model {model_dir} needs remote code (auto_map in config.json); Tailor never runs it")
    if not list(model_dir.glob("*.safetensors")):
        pickles = [
            p.name for p in model_dir.iterdir() if p.name in PICKLE_WEIGHTS or p.suffix in (".bin", ".pt", ".pth")
        ]
        if pickles:
            raise RefusedError(
                f"base model {model_dir} has only pickle weights ({', '.join(sorted(pickles))}); "
                "Tailor loads safetensors only: convert them first"
            )
        raise NotFoundError(f"base model folder {model_dir} holds no *.safetensors weights")
    if not any((model_dir / name).is_file() for name in TOKENIZER_VOCAB_FILES):
        # transformers then builds a 5-token tokenizer: every word becomes [UNK] and training "succeeds"
        raise NotFoundError(
            f"base model folder {model_dir} has no tokenizer vocabulary ({' or '.join(TOKENIZER_VOCAB_FILES)})"
        )
    return model_dir


def load_tokenizer(model_dir: Path):
    """The base model's tokenizer, offline, no remote code (``check_model_dir`` first).

    Raises:
        RefusedError: the tokenizer needs a package that is not installed (a MeCab Japanese BERT
            needs fugashi and unidic-lite), naming it.
    """
    from transformers import AutoTokenizer

    model_dir = check_model_dir(model_dir)
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True, trust_remote_code=False)
    except ImportError as err:
        # transformers names the missing package in its own words; say what to install.
        missing = err.name or first_line(err)
        raise RefusedError(
            f"base model {model_dir}'s tokenizer needs a package that is not installed "
            f"({missing}: {first_line(err)}); install it in Tailor's environment "
            "(a MeCab Japanese BERT needs: pip install fugashi unidic-lite)"
        ) from None


def load_encoder(model_dir: Path):
    """The base encoder's weights, offline, safetensors only, no remote code (``check_model_dir`` first).

    Raises:
        RefusedError: weights or a config transformers cannot load (a truncated weights file, an
            unknown model_type, a config that is not a model's), in one line naming the folder.
    """
    from safetensors import SafetensorError
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(
            str(model_dir), local_files_only=True, trust_remote_code=False, use_safetensors=True
        )
    except (ValueError, KeyError, TypeError, SafetensorError) as err:
        # transformers and safetensors say "damaged" in their own words, over many lines
        raise RefusedError(f"base model folder {model_dir} cannot be loaded: {first_line(err)}") from None
