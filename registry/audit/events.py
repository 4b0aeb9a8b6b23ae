"""One audit event: its fields, its key, its hash, and the strict parse of a stored one."""

from __future__ import annotations

import datetime as dt
import json
import re
import types
import typing
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from registry.canonical import JCS, canonical_json, event_sha256
from registry.errors import IntegrityError
from registry.event_time import event_time
from registry.settings import ROLES
from registry.signing import Signer, signed_bytes

GENESIS = "0" * 64
# delete-traffic: an admin erased recorded traffic (an APPI request or a period); changes no alias
ACTIONS = ("register", "promote", "rollback", "archive", "judge", "clear", "delete-traffic")


def audit_prefix(name: str) -> str:
    return f"audit/{name}/"


def event_key(name: str, seq: int) -> str:
    return f"{audit_prefix(name)}{seq:012d}.json"


def parse_time(value: str) -> dt.datetime:
    """ISO 8601 → aware UTC datetime; a time without zone is taken as UTC.

    Raises:
        ValueError: not ISO 8601, or outside the years 1…9999 once in UTC (0001-01-01T00:00+01:00).
    """
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    try:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    except OverflowError:
        raise ValueError(f"{value!r} is out of range in UTC") from None


@dataclass(frozen=True)
class AuditEvent:
    """One change. ``seq``, ``time``, ``prev_sha256`` and ``sha256`` are filled in when appended."""

    action: str
    name: str
    version: str
    actor: str
    role: str
    reason: str
    content_sha256: str | None = None
    alias: str | None = None
    alias_before: str | None = None
    alias_after: str | None = None
    override: bool = False
    policy_sha256: str | None = None
    gate: dict[str, Any] | None = None
    seq: int = 0
    time: str = ""
    prev_sha256: str = ""
    # The signer's key and its Ed25519 signature over ``signed_bytes``; absent from legacy events,
    # which are stored (and hashed) without them.
    key_id: str | None = None
    signature: str | None = None
    # How the bytes hashed and signed were made canonical (``registry.canonical``): absent from events
    # written before RFC 8785 was used, which keep verifying over the canonical JSON they were made with.
    canonical: str | None = None
    sha256: str = ""

    def _stored(self) -> dict[str, Any]:
        data = asdict(self)
        for unsigned in _UNSIGNED:
            if data[unsigned] is None:
                del data[unsigned]
        return data

    def body(self) -> dict[str, Any]:
        data = self._stored()
        data.pop("sha256")
        return data

    def digest(self) -> str:
        """The sha256 of its body, made canonical as its ``canonical`` field names.

        Raises:
            IntegrityError: the body cannot be made canonical that way (a number RFC 8785 cannot hold).
        """
        try:
            return event_sha256(self.body())
        except ValueError as err:
            raise IntegrityError(f"event {self.key_name} of '{self.name}' cannot be checked: {err}") from None

    def sealed(self) -> "AuditEvent":
        return replace(self, sha256=self.digest())

    def signed(self, signer: "Signer") -> "AuditEvent":
        """This event signed by ``signer`` over its RFC 8785 bytes (everything but the signature: the
        previous event's hash and, for a register, the manifest's content hash included), then sealed."""
        draft = replace(self, key_id=signer.key_id, signature="", canonical=JCS)
        return replace(draft, signature=signer.sign(signed_bytes(draft.body()))).sealed()

    def to_json(self) -> bytes:
        return canonical_json(self._stored())

    @property
    def key_name(self) -> str:
        return f"{self.seq:012d}"


def _json_types(hint: Any) -> tuple[type, ...]:
    """``str | None`` → (str, NoneType); ``dict[str, Any]`` → (dict,)."""
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return tuple(typing.get_origin(t) or t for t in members)


# What json.loads must give for each field; compared by exact type, so true is not a seq and 1 is not a flag.
_EVENT_TYPES = {name: _json_types(hint) for name, hint in typing.get_type_hints(AuditEvent).items()}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", type(None): "null"}


_UNSIGNED = ("key_id", "signature", "canonical")  # legacy events were written without them
_EVENT_TYPES.update({name: (str,) for name in _UNSIGNED})  # stored only when present


def _field_problem(raw: Any) -> str | None:
    """Why a parsed object is not an event as ``AuditEvent`` records it, naming the field."""
    if not isinstance(raw, dict):
        return f"it holds a JSON {type(raw).__name__}, not an object"
    for name, value in raw.items():
        allowed = _EVENT_TYPES.get(name)
        if allowed is None:
            return f"unknown field {name!r}"
        if type(value) not in allowed:
            wanted = " or ".join(_TYPE_NAMES[t] for t in allowed)
            return f"field {name!r} is {json.dumps(value)[:40]}, not {wanted}"
    missing = [f.name for f in fields(AuditEvent) if f.name not in raw and f.name not in _UNSIGNED]
    if missing:
        return f"fields {', '.join(missing)} are missing"
    if raw.get("canonical", JCS) != JCS:
        return f"field 'canonical' is {json.dumps(raw['canonical'])[:40]}, not {json.dumps(JCS)}"
    if raw["role"] not in ROLES:
        return f"field 'role' is {json.dumps(raw['role'])}, not one of {', '.join(ROLES)}"
    try:
        event_time(raw["time"])
    except ValueError as err:
        return f"field 'time': {err}"
    return None


def parse_event(key: str, data: bytes) -> AuditEvent:
    """The event stored at ``key``, every field of the type ``AuditEvent`` gives it.

    An event can be correctly hash-chained and still carry a list where an alias belongs (anyone
    who may append can write one); checked here, it is named instead of crashing the fold.

    Raises:
        IntegrityError: the object is not an audit event, naming the key and the field.
    """
    try:
        raw = json.loads(data)
    except ValueError as err:  # UnicodeDecodeError is a ValueError
        raise IntegrityError(f"{key} is not an audit event (modified or inserted): {err}") from None
    if problem := _field_problem(raw):
        raise IntegrityError(f"{key} is not an audit event (modified or inserted): {problem}")
    return AuditEvent(**raw)


def sequence_of(name: str, keys: list[str], after: int = 0, *, prefix: str | None = None) -> list[int]:
    """Sequence numbers of the listed event keys (under ``prefix``, by default the audit log of
    ``name``), checked to run from 1 without gaps or strangers.

    Raises:
        IntegrityError: an object that is not ``<seq:012d>.json``, or a missing sequence number.
    """
    pattern = re.compile(re.escape(prefix or audit_prefix(name)) + r"(\d{12})\.json")
    seqs = []
    for key in keys:
        match = pattern.fullmatch(key)
        if not match:
            raise IntegrityError(f"unexpected object {key} in the audit log of '{name}' (inserted?)")
        seqs.append(int(match.group(1)))
    seqs.sort()
    for expected, seq in enumerate(seqs, start=1):
        if seq != expected:
            raise IntegrityError(
                f"event {expected:012d} of '{name}' is missing (deleted): the log jumps from "
                f"{expected - 1:012d} to {seq:012d}"
            )
    return [s for s in seqs if s > after]
