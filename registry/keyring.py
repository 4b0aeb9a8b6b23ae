"""The keyring: who may sign audit events, as a signed, hash-chained log of key changes.

Layout: ``keys/<seq:012d>.json``, written create-only like the audit log. Event 1 (``init``) is
signed by the first admin's own key and names an offline recovery key; its sha256 is the store's
*trust root*, which every person's credentials file and every server's configuration pin, so a
keyring written by someone else (a trainer's keys can write objects) is refused.

Every later event is signed by an admin key valid at that time, or by the recovery key (a lost
admin key). With the quorum of 2 that ``init`` records (``registry.signed_rules``; keyrings from
before it recorded one have it too), while two or more admins exist, adding or rotating a key, and
disabling an admin, wait for another admin's ``confirm`` event before they count, whoever signed them (the recovery
key included): one admin alone can neither publish a key for someone else and sign as them nor
first disable the other admins to act alone. A rotated key keeps counting until its successor is
confirmed. Disabling a non-admin takes effect at once.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from registry.canonical import canonical_json, canonical_sha256
from registry.errors import IntegrityError, RefusedError
from registry.event_time import time_problem
from registry.settings import ROLES
from registry.signed_rules import quorum, rules_problem
from registry.signing import key_id, signature_holds, signed_bytes

KEYS_PREFIX = "keys/"
GENESIS = "0" * 64
KEY_ACTIONS = ("init", "add", "rotate", "disable", "confirm")
KINDS = ("person", "service")
# Services run unattended (a server's reader, a schedule's trainer): none may move production.
SERVICE_ROLES = ("reader", "trainer")
RECOVERY = "recovery"
# ASCII only: a Cyrillic 'а' cannot pass for a Latin 'a' in a name that four-eyes or a reader compares.
_PERSON = re.compile(r"[a-z][a-z0-9._-]{0,31}")


def validate_person(name: str) -> str:
    """Raises: RefusedError: not 1-32 lowercase ASCII letters, digits, '.', '_' or '-' starting with a letter."""
    if not _PERSON.fullmatch(name or ""):
        raise RefusedError(
            f"person name {name!r} is refused: use 1-32 lowercase ASCII letters, digits, '.', '_' or "
            "'-', starting with a letter (look-alike letters from other scripts are not accepted)"
        )
    return name


def key_event_key(seq: int) -> str:
    return f"{KEYS_PREFIX}{seq:012d}.json"


@dataclass(frozen=True)
class KeyEvent:
    """One change of the keyring. ``seq``, ``time``, ``prev_sha256``, ``signer``, ``signature`` and
    ``sha256`` are filled in when appended."""

    action: str
    person: str
    role: str = ""
    kind: str = "person"
    public_key: str | None = None
    recovery_public_key: str | None = None  # init only
    legacy_heads: dict[str, list] | None = None  # init only: adapter name → [seq, sha256] signed as legacy
    confirms: str | None = None  # confirm only: the sha256 of the event confirmed
    # init only: the quorum and the registry rules every reader replays (registry.signed_rules); stored
    # only when present, so a keyring begun before they were recorded keeps its hashes.
    rules: dict[str, Any] | None = None
    reason: str = ""
    seq: int = 0
    time: str = ""
    prev_sha256: str = ""
    signer: str = ""
    signature: str = ""
    sha256: str = ""

    def _stored(self) -> dict[str, Any]:
        data = asdict(self)
        if data["rules"] is None:
            del data["rules"]
        return data

    def body(self) -> dict[str, Any]:
        data = self._stored()
        data.pop("sha256")
        return data

    def to_json(self) -> bytes:
        return canonical_json(self._stored())

    @property
    def label(self) -> str:
        return f"key event {self.seq:012d}"


@dataclass
class KeyRecord:
    person: str
    role: str
    kind: str
    public_key: str
    valid_from: str | None  # None while it waits for a second admin's confirmation
    disabled_at: str | None = None


@dataclass
class Keyring:
    """The fold of the key log: every key ever published, when it counted, and what to review."""

    trust_root: str = ""
    head_seq: int = 0
    head_sha256: str = GENESIS
    head_time: str = ""
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    people: dict[str, str] = field(default_factory=dict)  # person → current key id
    disabled: list[str] = field(default_factory=list)
    recovery_key: str = ""
    legacy_heads: dict[str, list] = field(default_factory=dict)
    rules: dict[str, Any] | None = None  # as the init event recorded them; None before they were
    pending: dict[str, KeyEvent] = field(default_factory=dict)  # sha256 → add/rotate waiting for confirmation
    review: list[str] = field(default_factory=list)

    def signing_key(self, kid: str, when: str) -> KeyRecord:
        """The key ``kid`` as it stood at ``when``.

        Raises:
            IntegrityError: unknown, not yet confirmed, not yet valid, or disabled by then.
        """
        record = self.keys.get(kid)
        if record is None:
            raise IntegrityError(f"key {kid} is not in the keyring")
        if record.valid_from is None:
            raise IntegrityError(f"key {kid} of {record.person} waits for a second admin's confirmation")
        if when < record.valid_from:
            raise IntegrityError(f"key {kid} of {record.person} was not valid before {record.valid_from}")
        if record.disabled_at is not None and when >= record.disabled_at:
            raise IntegrityError(f"key {kid} of {record.person} was disabled at {record.disabled_at}")
        return record

    def active_admins(self, when: str) -> set[str]:
        return {
            r.person
            for r in self.keys.values()
            if r.role == "admin"
            and r.valid_from is not None
            and r.valid_from <= when
            and (r.disabled_at is None or when < r.disabled_at)
        }

    def apply(self, event: KeyEvent) -> None:
        """Fold one key event in, after checking its hash, link, signature and rules.

        Raises:
            IntegrityError: naming the event and what is wrong with it.
        """
        label = event.label
        if canonical_sha256(event.body()) != event.sha256:
            raise IntegrityError(f"{label} was modified: its content does not match its sha256")
        if event.prev_sha256 != self.head_sha256 or event.seq != self.head_seq + 1:
            raise IntegrityError(
                f"{label} does not follow key event {self.head_seq:012d}: it was inserted, moved or rewritten"
            )
        if problem := time_problem(event.time, self.head_time):  # validity is judged by time: it must be one
            raise IntegrityError(
                f"{label} ({event.action} {event.person}) has a time the keyring cannot explain: {problem}"
            )
        signer_person = self._check_signature(event)
        problem = self._rule_problem(event, signer_person)
        if problem:
            raise IntegrityError(f"{label} ({event.action} {event.person}) is refused: {problem}")
        by = "the recovery key" if signer_person == RECOVERY else signer_person
        if event.action == "init":
            self.trust_root, self.recovery_key = event.sha256, event.recovery_public_key or ""
            self.legacy_heads = dict(event.legacy_heads or {})
            self.rules = event.rules
            self._publish(event, valid_from=event.time)
            self.review.append(
                f"{label}: keyring started by {event.person} (admin)"
                + (f"; legacy logs sealed: {', '.join(sorted(self.legacy_heads))}" if self.legacy_heads else "")
                + (f"; rules every reader replays: {canonical_json(self.rules).decode()}" if self.rules else "")
            )
        elif event.action in ("add", "rotate"):
            needs_second = self._needs_second(event.time)
            replaced = self.people.get(event.person) if event.action == "rotate" else None
            self._publish(event, valid_from=None if needs_second else event.time)
            if needs_second:
                self.pending[event.sha256] = event
            elif replaced is not None:
                self.keys[replaced].disabled_at = event.time
            self.review.append(
                f"{label}: {by} {'added' if event.action == 'add' else 'rotated the key of'} "
                f"{event.person} ({event.role}, {event.kind}), key {key_id(event.public_key or '')}"
                + (" — waiting for a second admin's confirmation" if needs_second else "")
            )
        elif event.action == "disable":
            needs_second = self._is_admin(event.person) and self._needs_second(event.time)
            if needs_second:
                self.pending[event.sha256] = event
            else:
                self._disable(event.person, event.time)
            self.review.append(
                f"{label}: {by} disabled {event.person}"
                + (" — waiting for a second admin's confirmation" if needs_second else "")
            )
        else:  # confirm
            confirmed = self.pending.pop(event.confirms or "")
            if confirmed.action == "disable":
                self._disable(confirmed.person, event.time)
            else:
                new_key = key_id(confirmed.public_key or "")
                for kid, record in self.keys.items():  # a rotated key counted until now
                    if record.person == confirmed.person and kid != new_key and record.disabled_at is None:
                        record.disabled_at = event.time
                self.keys[new_key].valid_from = event.time
            self.review.append(
                f"{label}: {by} confirmed key event {confirmed.seq:012d} ({confirmed.action} {confirmed.person})"
            )
        self.head_seq, self.head_sha256, self.head_time = event.seq, event.sha256, event.time

    def _needs_second(self, when: str) -> bool:
        return quorum(self.rules) >= 2 and len(self.active_admins(when)) >= 2

    def _is_admin(self, person: str) -> bool:
        return any(r.person == person and r.role == "admin" for r in self.keys.values())

    def _disable(self, person: str, when: str) -> None:
        for record in self.keys.values():
            if record.person == person and record.disabled_at is None:
                record.disabled_at = when
        self.disabled.append(person)

    def _publish(self, event: KeyEvent, *, valid_from: str | None) -> None:
        public = event.public_key or ""
        self.keys[key_id(public)] = KeyRecord(
            person=event.person, role=event.role, kind=event.kind, public_key=public, valid_from=valid_from
        )
        self.people[event.person] = key_id(public)

    def _check_signature(self, event: KeyEvent) -> str:
        """The person (or RECOVERY) whose key signed ``event``. Raises: IntegrityError."""
        if event.action == "init":
            if event.seq != 1 or not event.public_key or event.signer != _kid(event.public_key):
                raise IntegrityError(f"{event.label}: only key event 1 starts a keyring, signed by its own key")
            public, person = event.public_key, event.person
        elif self.recovery_key and event.signer == _kid(self.recovery_key):
            public, person = self.recovery_key, RECOVERY
        else:
            try:
                record = self.signing_key(event.signer, event.time)
            except IntegrityError as err:
                raise IntegrityError(f"{event.label} is signed by a key that may not sign then: {err}") from None
            if record.role != "admin":
                raise IntegrityError(
                    f"{event.label} is signed by {record.person} ({record.role}): only an admin or "
                    "the recovery key changes the keyring"
                )
            public, person = record.public_key, record.person
        if not signature_holds(public, event.signature, signed_bytes(event.body())):
            raise IntegrityError(f"{event.label}: its signature does not hold (forged or modified)")
        return person

    def _rule_problem(self, event: KeyEvent, signer_person: str) -> str | None:
        if event.action not in KEY_ACTIONS:
            return f"unknown action {event.action!r}"
        if event.action == "init":
            if event.role != "admin" or not event.recovery_public_key:
                return "init needs an admin and a recovery key"
            return None if event.rules is None else rules_problem(event.rules)
        if event.rules is not None:
            return "only the init event records rules"
        if event.action == "confirm":
            pending = self.pending.get(event.confirms or "")
            if pending is None:
                return "it confirms no pending key event"
            first = self.keys.get(pending.signer)
            return (
                "the admin who made a key change cannot also confirm it"
                if first and first.person == signer_person
                else None
            )
        if event.action in ("add", "rotate"):
            if not _PERSON.fullmatch(event.person):
                return "not a valid person name"
            if event.role not in ROLES or event.kind not in KINDS:
                return f"role {event.role!r} or kind {event.kind!r} is not known"
            if event.kind == "service" and event.role not in SERVICE_ROLES:
                return f"a service may act as {' or '.join(SERVICE_ROLES)} only"
            if not event.public_key or _kid(event.public_key) in self.keys:
                return "its public key is missing, malformed or used before"
        if event.action == "add":
            return f"{event.person} exists already (rotate their key instead)" if event.person in self.people else None
        if event.person not in self.people or event.person in self.disabled:
            return f"{event.person} is not an active identity"
        if event.action == "rotate" and event.role != self.keys[self.people[event.person]].role:
            return "a rotation keeps the role (disable and add a new identity to change it)"
        return None


def _kid(public_key: str) -> str:
    try:
        return key_id(public_key)
    except Exception:  # noqa: BLE001 - a malformed key names no one
        return ""
