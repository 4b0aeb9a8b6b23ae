"""The model card a trainer gives at register or retrain: read from YAML or JSON, stored in the adapter folder."""

from __future__ import annotations

import json
from pathlib import Path

from registry.errors import ConfigError, RefusedError
from registry.model_card import CARD_FILE, ModelCard, parse_card


def read_card(card_file: Path) -> ModelCard:
    """The card in ``card_file`` (UTF-8 YAML or JSON: intended_use, limitations, languages).

    Raises:
        ConfigError: the file is missing, unreadable or malformed (the field named).
    """
    import yaml

    from pipelines.typed_files import one_line, safe_load
    from registry.files import require_file

    require_file(card_file, "--card", ConfigError)
    try:
        return parse_card(safe_load(Path(card_file).read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"--card {card_file} is not UTF-8 YAML or JSON: {one_line(err)}") from None
    except ValueError as err:
        raise ConfigError(f"--card {card_file}: {err}") from None


def add_card(adapter_dir: Path, card: ModelCard) -> None:
    """Put ``card`` into the adapter folder as ``model_card.json``, which is registered with it.

    Raises:
        RefusedError: the folder holds another card already (it is never overwritten).
    """
    from registry.files import write_atomic

    text = json.dumps(card.to_dict(), ensure_ascii=False, indent=2)
    target = Path(adapter_dir) / CARD_FILE
    if target.exists():
        if target.read_text(encoding="utf-8", errors="replace") != text:
            raise RefusedError(f"{target} exists with another card: remove it or give that card")
        return
    if Path(adapter_dir).is_dir():  # else register names the missing folder
        write_atomic(target, text)
