"""What `tailor audit clear` may remove from a frozen log: a bad newest event and objects that are
not events of the chain; never a good event, and nothing while an event is missing in the middle."""

from __future__ import annotations

import re

from registry.audit.events import audit_prefix, event_key, parse_event
from registry.audit.state import AliasState, Judge
from registry.errors import IntegrityError, RefusedError
from registry.layout import no_audit_log
from registry.manifest import validate_name
from registry.object_store import ObjectStore


def objects_to_clear(store: ObjectStore, name: str, judge: Judge | None) -> list[tuple[str, str]]:
    """Each object of ``name``'s log to remove, with why; the chain is judged object by object.

    Raises:
        NotFoundError: ``name`` has no audit log.
        RefusedError: nothing to clear, an event before the newest fails, or an event was deleted in
            the middle of the log (restore it from the object versions).
    """
    prefix = audit_prefix(validate_name(name))
    listed = [o.key for o in store.list(prefix)]
    if not listed:
        raise no_audit_log(name)
    chain, strays = _chain_and_strays(name, listed)
    if strays and _ever_written(store, event_key(name, len(chain) + 1)):
        raise RefusedError(
            f"event {len(chain) + 1:012d} of '{name}' was deleted, and events follow it: restore "
            "it from the bucket's object versions (an admin's S3 tools); clear removes no event "
            "that may be good"
        )
    state, bad = AliasState(name=name), None
    for seq in chain:
        key = event_key(name, seq)
        try:
            state.apply(parse_event(key, store.get(key)), judge)
        except IntegrityError as err:
            if seq != chain[-1]:
                raise RefusedError(
                    f"the audit log of '{name}' fails before its newest object ({err}): only a "
                    "bad newest object can be cleared"
                ) from None
            bad = (key, str(err))
    removed = [(key, "not an event of the log") for key in strays] + ([bad] if bad else [])
    if not removed:
        raise RefusedError(
            f"every object of the audit log of '{name}' is a good event: there is nothing to clear "
            "(`tailor audit verify` names what fails; an overwritten event is restored from the "
            "bucket's object versions with the server's tools)"
        )
    return removed


def _chain_and_strays(name: str, keys: list[str]) -> tuple[list[int], list[str]]:
    """The sequence numbers that run from 1 without a gap, and every other object under the log."""
    pattern = re.compile(re.escape(audit_prefix(name)) + r"(\d{12})\.json")
    numbered = {int(m.group(1)): key for key in keys if (m := pattern.fullmatch(key))}
    chain = []
    while len(chain) + 1 in numbered:
        chain.append(len(chain) + 1)
    return chain, sorted(set(keys) - {numbered[seq] for seq in chain})


def _ever_written(store: ObjectStore, key: str) -> bool:
    return any(v.key == key for v in store.versions(key))
