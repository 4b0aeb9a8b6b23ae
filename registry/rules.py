"""The governance rules, judged twice: by the writing client before an event lands, and on replay
by every reader of a signed log (``EventJudge``), so an event a client of one's own wrote against
them is named instead of believed.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.audit import AliasState, AuditEvent
from registry.event_time import utc_now
from registry.errors import IntegrityError
from registry.keyring import KeyLog
from registry.signing import signed_bytes
from registry.readable_text import same_person
from registry.signing import signature_holds


@dataclass(frozen=True)
class RegistryRules:
    """Governance rules that are configuration, not code."""

    four_eyes_production: bool = True  # whoever registered a version cannot promote it to production
    aliases: tuple[str, ...] = ("staging", "production")
    production_alias: str = "production"
    override_roles: tuple[str, ...] = ("approver",)  # who may promote past a failed gate, with a reason
    # A version registered without a gate decision was never compared with production: it may not
    # reach production by accident, only by an approver's --override.
    require_gate: bool = True
    # The configured policy's sha256: a gate decided under another policy does not count for production.
    policy_sha256: str | None = None


WRITERS = {
    "register": ("admin", "trainer"),
    "promote": ("admin", "approver", "trainer"),
    "rollback": ("admin", "approver", "trainer"),
    "archive": ("admin", "approver", "trainer"),
    "judge": ("admin", "approver", "trainer"),
    "clear": ("admin",),
    "delete-traffic": ("admin",),
}


def role_problem(role: str, action: str, alias: str | None, rules: RegistryRules) -> str | None:
    """Why ``role`` may not ``action`` (on ``alias``), if it may not."""
    if role not in WRITERS.get(action, ()):
        can = "only read" if role == "reader" else "not " + action
        return f"role '{role}' may {can}; {action} needs one of: {', '.join(WRITERS.get(action, ()))}"
    if role == "trainer" and alias == rules.production_alias:
        return f"role 'trainer' cannot move '{alias}': an approver (or admin) must"
    return None


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
                raise IntegrityError(f"{label} is unsigned, but this store signs every event since its keyring "
                                     "began: it was forged or rewritten")  # fmt: skip
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
            raise IntegrityError(f"{label} names {event.actor!r} ({event.role}) but was signed by {record.person} "
                                 f"({record.role})")  # fmt: skip
        if problem := self._rule_problem(state, event):
            raise IntegrityError(f"{label} breaks the rules: {problem}")

    def _rule_problem(self, state: AliasState, event: AuditEvent) -> str | None:
        rules = self.rules
        if problem := role_problem(event.role, event.action, event.alias, rules):
            return problem
        if event.action in ("register", "clear", "delete-traffic"):
            return None
        if event.content_sha256 != state.versions.get(event.version):
            return f"it names a manifest of {event.version} other than the one its register event recorded"
        production = rules.production_alias
        if event.action == "archive":
            if event.role == "trainer" and event.version in state.history.get(production, []):
                return f"role 'trainer' cannot archive {event.version}: '{production}' held it"
            return None
        if event.override and event.role not in rules.override_roles and event.action == "promote":
            return f"--override is reserved to the {' or '.join(rules.override_roles)} role"
        if event.action != "promote" or event.alias != production:
            return None
        registrant = state.registered_by.get(event.version, "")
        if rules.four_eyes_production and same_person(registrant, event.actor):
            return f"four-eyes: {event.actor} registered {event.version} and promoted it to {production}"
        if event.override:
            return None
        if event.gate is None and rules.require_gate:
            return f"{event.version} has no gate decision and the promotion has no --override"
        if event.gate is not None and event.gate.get("passed") is not True:
            return f"{event.version} failed its gate and the promotion has no --override"
        return None
