"""The rules every reader of a signed store replays, recorded once in the keyring's first event.

A reader's local policy and configuration may differ from another's (a laptop with four-eyes
switched off, a server set up a year ago): were the replayed rules local, one reader would accept
a production promotion that another names as forged. Recorded in the signed ``init`` event, whose
hash every reader pins as the trust root, they are the same for every reader and no one can
change them afterwards. Keyrings begun before the rules were recorded keep each reader's local
rules and the quorum of two they always had.

``quorum``: how many admins must agree to a key change (adding or rotating a key, disabling an
admin) while that many admins exist: 1, each admin alone; 2, a second admin confirms.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from registry.governance import RegistryRules
from registry.settings import ROLES

QUORUMS = (1, 2)
LEGACY_QUORUM = 2  # what a keyring begun before the quorum was recorded always enforced

# The rules judged on replay (``governance.event_rule_problem``), with the JSON type each is recorded as.
_REPLAYED = {
    "four_eyes_production": bool,
    "aliases": list,
    "production_alias": str,
    "override_roles": list,
    "require_gate": bool,
}


def recorded_rules(rules: RegistryRules, quorum: int) -> dict[str, Any]:
    """What the ``init`` event records of ``rules`` and the ``quorum``."""
    doc: dict[str, Any] = {"quorum": quorum}
    for name, kind in _REPLAYED.items():
        value = getattr(rules, name)
        doc[name] = list(value) if kind is list else value
    return doc


def rules_problem(doc: Any) -> str | None:
    """Why ``doc`` is not rules as ``recorded_rules`` writes them, naming the field."""
    if not isinstance(doc, dict) or set(doc) != {"quorum", *_REPLAYED}:
        return f"its rules must hold exactly {', '.join(['quorum', *_REPLAYED])}"
    if type(doc["quorum"]) is not int or doc["quorum"] not in QUORUMS:
        return f"its quorum is {doc['quorum']!r}, not one of {', '.join(map(str, QUORUMS))}"
    for name, kind in _REPLAYED.items():
        if type(doc[name]) is not kind or (kind is list and not all(isinstance(v, str) for v in doc[name])):
            return f"its rule {name} is {doc[name]!r}, not {kind.__name__}"
    if doc["production_alias"] not in doc["aliases"]:
        return f"its production alias {doc['production_alias']!r} is not one of its aliases"
    if not set(doc["override_roles"]) <= set(ROLES):
        return f"its override roles {doc['override_roles']} are not all roles ({', '.join(ROLES)})"
    return None


def replay_rules(doc: dict[str, Any] | None, local: RegistryRules) -> RegistryRules:
    """``local`` with the replayed rules the store recorded (``doc``; None: a keyring from before,
    whose readers keep their local rules). The policy hash stays local: it is the gate's input."""
    if doc is None:
        return local
    return replace(local, **{n: tuple(doc[n]) if kind is list else doc[n] for n, kind in _REPLAYED.items()})


def quorum(doc: dict[str, Any] | None) -> int:
    return LEGACY_QUORUM if doc is None else doc["quorum"]
