"""Every event of a signed log judged on replay: its signature, its key's person and role, and the
governance rules (``registry.governance``) on the log before it.
"""

from __future__ import annotations

from registry.audit.events import AuditEvent
from registry.audit.state import AliasState
from registry.errors import IntegrityError
from registry.event_time import utc_now
from registry.governance import RegistryRules, event_rule_problem
from registry.key_log import KeyLog
from registry.signed_rules import replay_rules
from registry.signing import signature_holds, signed_bytes


class EventJudge:
    """Checks each event of a signed log: a valid signature by a key valid at that time, actor and
    role those of the key, and the rules (role, four-eyes, gate, archive) on the log before it.

    Unsigned events pass only where the keyring's first event sealed them as legacy; a store
    without a keyring (and no trust root pinned) is read as before signing existed.
    """

    def __init__(self, keys: KeyLog, rules: RegistryRules):
        self.keys = keys
        self.rules = rules
        self._read_at = ""

    def signs(self) -> bool:
        return bool(self.keys.keyring(refresh=True).trust_root)

    def __call__(self, state: AliasState, event: AuditEvent, label: str) -> None:
        if not self._read_at:
            self._read_at = utc_now()
            ring = self.keys.keyring()  # the first read lists the keyring whole
        else:
            ring = self.keys.keyring()
            if event.time > self._read_at or (event.key_id is not None and event.key_id not in ring.keys):
                # An event newer than the last read of the keyring: a key added or disabled since, or a
                # keyring started since (a server that has run from before signing began).
                self._read_at = utc_now()
                ring = self.keys.keyring(refresh=True)
        if not ring.trust_root:  # a store made before signing, and no trust root pinned: read as it was
            return
        if event.signature is None:
            sealed = ring.legacy_heads.get(state.name)
            if sealed is None or event.seq > sealed[0]:
                raise IntegrityError(
                    f"{label} is unsigned, but this store signs every event since its keyring "
                    "began: it was forged or rewritten"
                )
            if event.seq == sealed[0] and event.sha256 != sealed[1]:
                raise IntegrityError(f"{label} is not the legacy event the keyring sealed: it was rewritten")
            return
        try:
            record = ring.signing_key(event.key_id or "", event.time)
        except IntegrityError as err:
            raise IntegrityError(f"{label} is signed by a key that could not sign then: {err}") from None
        if not signature_holds(record.public_key, event.signature, signed_bytes(event.body())):
            raise IntegrityError(f"{label}: its signature does not hold (forged or modified)")
        if event.actor != record.person or event.role != record.role:
            raise IntegrityError(
                f"{label} names {event.actor!r} ({event.role}) but was signed by {record.person} ({record.role})"
            )
        # The rules the keyring's first event recorded, not this machine's: every reader judges alike.
        if problem := event_rule_problem(state, event, replay_rules(ring.rules, self.rules)):
            raise IntegrityError(f"{label} breaks the rules: {problem}")
