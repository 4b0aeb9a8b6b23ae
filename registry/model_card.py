"""The trainer's model card: what the adapter is for, what it is not for, which languages it reads.

Given at register (`tailor register --card FILE`), it is stored with the version as
``model_card.json`` and shown first in the console and the report. The quality numbers are not in
it: they come from the version's own evidence, which the trainer cannot restate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CARD_FILE = "model_card.json"
MAX_CARD_CHARS = 4000
FIELDS = ("intended_use", "limitations", "languages")


@dataclass(frozen=True)
class ModelCard:
    intended_use: str
    limitations: str = ""
    languages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_card(raw: Any) -> ModelCard:
    """A card from its parsed file.

    Raises:
        ValueError: not a mapping, an unknown key, a missing intended use, a field of the wrong type
            or too long (each named).
    """
    if not isinstance(raw, dict):
        raise ValueError("a model card is a mapping of intended_use, limitations and languages")
    problems = [f"unknown key {key!r} (known: {', '.join(FIELDS)})" for key in raw if key not in FIELDS]
    for key in ("intended_use", "limitations"):
        value = raw.get(key, "")
        if not isinstance(value, str):
            problems.append(f"{key} must be text")
        elif len(value) > MAX_CARD_CHARS:
            problems.append(f"{key} has {len(value)} characters; at most {MAX_CARD_CHARS}")
    if isinstance(raw.get("intended_use"), str) and not raw["intended_use"].strip():
        problems.append("intended_use is empty: say what the adapter is for")
    elif "intended_use" not in raw:
        problems.append("intended_use is missing: say what the adapter is for")
    languages = raw.get("languages", [])
    if not isinstance(languages, list) or not all(isinstance(x, str) and x.strip() for x in languages):
        problems.append("languages must be a list of language names or codes (e.g. [ja, en])")
    if problems:
        raise ValueError("; ".join(problems))
    return ModelCard(
        intended_use=raw["intended_use"].strip(),
        limitations=str(raw.get("limitations", "")).strip(),
        languages=[x.strip() for x in languages],
    )
