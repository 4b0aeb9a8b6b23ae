"""The append-only audit log: one hash-chained event per object, and alias state as its fold.

Layout: ``audit/<name>/<seq:012d>.json``, sequence numbers from 1 with no gaps. Each event holds
the sha256 of the event before it and its own sha256 (canonical JSON), and is written
create-only: two writers racing for the same sequence number cannot both win, and the loser
re-reads the log and retries. The fold checks every event it reads (hash, link, sequence and
meaning), so state is never built on a broken chain as it was read; a cache saves re-reading old
events, so a later rewrite of one is found by ``verify``, which trusts no cache.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import random
import re
import time
import types
import typing
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

from registry.atomic_file import write_atomic
from registry.canonical import canonical_json, canonical_sha256
from registry.event_time import event_time, received_problem, time_problem, utc_now
from registry.errors import AlreadyExistsError, IntegrityError, NotFoundError, RefusedError, StoreError
from registry.manifest import GateSummary
from registry.settings import ROLES
from registry.signing import Signer, signed_bytes
from registry.store import ObjectStore, put_kept, rewritten_keys

GENESIS = "0" * 64
# delete-traffic: an admin erased recorded traffic (an APPI request or a period); changes no alias
ACTIONS = ("register", "promote", "rollback", "archive", "judge", "clear", "delete-traffic")
MAX_APPEND_ATTEMPTS = 100
_FETCH_THREADS = 8
_PROBE_LIMIT = 8  # new events read key by key before listing instead


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
    sha256: str = ""

    def _stored(self) -> dict[str, Any]:
        data = asdict(self)
        for unsigned in ("key_id", "signature"):
            if data[unsigned] is None:
                del data[unsigned]
        return data

    def body(self) -> dict[str, Any]:
        data = self._stored()
        data.pop("sha256")
        return data

    def sealed(self) -> "AuditEvent":
        return replace(self, sha256=canonical_sha256(self.body()))

    def signed(self, signer: "Signer") -> "AuditEvent":
        """This event signed by ``signer`` (over everything but the signature: the previous event's
        hash and, for a register, the manifest's content hash included), then sealed."""
        draft = replace(self, key_id=signer.key_id, signature="")
        return replace(draft, signature=signer.sign(signed_bytes(draft.body()))).sealed()

    def to_json(self) -> bytes:
        return canonical_json(self._stored())

    @property
    def key_name(self) -> str:
        return f"{self.seq:012d}"


def _all_text(items: Any) -> bool:
    return all(isinstance(item, str) for item in items)


@dataclass
class AliasState:
    """What the log says now: aliases, each alias's history, registered and archived versions."""

    name: str
    head_seq: int = 0
    head_sha256: str = GENESIS
    head_time: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)  # versions each alias held, newest last
    versions: dict[str, str] = field(default_factory=dict)  # registered version → manifest content hash
    archived: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)  # versions an alias ever held: their manifests existed
    registered_by: dict[str, str] = field(default_factory=dict)  # version → who registered it
    signed: int = 0  # events that carry a signature (the others are legacy, sealed by the keyring)
    # registered version → its gate verdict as it stands (the register event's, then each judge event's)
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def referenced(self, version: str) -> bool:
        """Whether an event after its register needed ``version``'s manifest (promote, archive)."""
        return version in self.promoted or version in self.archived

    def previous(self, alias: str) -> str | None:
        """The version ``alias`` held before its current one (what a rollback returns to)."""
        held = self.history.get(alias, [])
        return held[-2] if len(held) >= 2 else None

    def apply(self, event: AuditEvent, judge: "Judge | None" = None) -> None:
        """Fold one event in, after checking that it follows the log and makes sense there, and,
        with a ``judge``, that its signer could sign it and the rules allowed it.

        Raises:
            IntegrityError: wrong hash, wrong link, wrong sequence, or an event the log cannot explain.
        """
        # Named by the object it was read from (the next one in the log), not by the seq it claims.
        where = f"{audit_prefix(self.name)}{self.head_seq + 1:012d}.json"
        label = f"event {self.head_seq + 1:012d} of '{self.name}'"
        if canonical_sha256(event.body()) != event.sha256:
            raise IntegrityError(f"{label} was modified: its content does not match its sha256")
        if event.seq != self.head_seq + 1 or event.name != self.name:
            raise IntegrityError(
                f"{where} records seq {event.seq} of '{event.name}': it was inserted, moved or copied there, or "
                f"{self.head_seq:012d} was replaced or inserted before it"
            )
        if event.prev_sha256 != self.head_sha256:
            before = f"{self.head_seq:012d}"
            raise IntegrityError(
                f"{label} does not follow event {before}: its prev_sha256 is not that event's hash, so event "
                f"{before} was replaced or inserted (or {event.key_name} was rewritten)"
            )
        if problem := time_problem(event.time, self.head_time):
            raise IntegrityError(f"{label} ({event.action} {event.version}) has a time the log cannot explain: {problem}")
        problem = self._meaning_problem(event)
        if problem:
            raise IntegrityError(f"{label} ({event.action} {event.version}) is inconsistent with the log: {problem}")
        if judge is not None:
            judge(self, event, f"{label} ({event.action} {event.version} by {event.actor})")
        if event.signature is not None:
            self.signed += 1
        if event.action == "register":
            self.versions[event.version] = event.content_sha256 or ""
            self.registered_by[event.version] = event.actor
            if event.gate is not None:
                self.verdicts[event.version] = _verdict(event.gate)
        elif event.action in ("clear", "delete-traffic"):
            pass
        elif event.action == "archive":
            self.archived.append(event.version)
        elif event.action == "judge":
            self.verdicts[event.version] = _verdict(event.gate or {})  # no alias moves
        elif event.action == "promote":
            self.history.setdefault(event.alias, []).append(event.version)
            self.aliases[event.alias] = event.version
            if event.version not in self.promoted:
                self.promoted.append(event.version)
        else:  # rollback
            self.history[event.alias].pop()
            self.aliases[event.alias] = event.alias_after
        self.head_seq, self.head_sha256, self.head_time = event.seq, event.sha256, event.time

    def _meaning_problem(self, event: AuditEvent) -> str | None:
        if event.action not in ACTIONS:
            return f"unknown action {event.action!r}"
        if event.action in ("clear", "delete-traffic"):  # records what an admin removed; changes nothing
            return None
        if event.action == "register":
            return f"{event.version} was registered before" if event.version in self.versions else None
        if event.version not in self.versions:
            return f"{event.version} was never registered"
        if event.version in self.archived and event.action in ("archive", "promote", "judge"):
            return f"{event.version} was archived before"
        if event.action == "judge":
            return self.judge_problem(event.version, event.gate)
        if event.action == "archive":
            holders = [a for a, v in self.aliases.items() if v == event.version]
            return f"{event.version} is held by {', '.join(holders)}" if holders else None
        current = self.aliases.get(event.alias or "")
        if event.alias_before != current:
            return f"alias_before is {event.alias_before!r} but '{event.alias}' held {current!r}"
        if event.action == "promote":
            return None if event.alias_after == event.version else "alias_after is not the promoted version"
        previous = self.previous(event.alias or "")
        if previous is None or event.alias_after != previous or event.version != previous:
            return f"a rollback of '{event.alias}' must return to {previous!r}"
        return None

    def verdict(self, version: str) -> GateSummary | None:
        """``version``'s gate verdict as it stands: its newest judge event's, else its register event's."""
        return _summary(self.verdicts.get(version))

    def judge_problem(self, version: str, gate: dict[str, Any] | None) -> str | None:
        """Why ``gate`` cannot stand as ``version``'s new verdict, or None.

        A judge event may only finish what the gate left open: the verdict as it stands must name
        checks it could not judge, and the new one may differ only in those checks (now failed,
        passed or still not judged). Kept here, in the fold, so no writer can skip it and a forged
        event is refused by every reader.
        """
        new, old = _summary(gate), _summary(self.verdicts.get(version))
        if new is None:
            return "a judge event carries no well-formed gate verdict"
        if not new.consistent():
            return (f"its verdict says passed={str(new.passed).lower()} with {len(new.failures)} failure(s) and "
                    f"{len(new.not_judged)} check(s) not judged")
        if old is None or not old.not_judged:
            return f"{version}'s verdict has no check left unjudged: only such a check may be judged again"
        opened = old.unjudged_checks()
        if (new.policy_sha256, new.policy_version, new.against) != (old.policy_sha256, old.policy_version, old.against):
            return (f"it changes the policy or production it was judged under (policy {old.policy_version}, "
                    f"against {old.against}): only the checks not judged may change")
        added = [f for f in new.failures if f not in old.failures]
        if any(f not in new.failures for f in old.failures) or any(f.partition(".")[0] not in opened for f in added):
            return f"it changes failures outside the checks not judged ({', '.join(sorted(opened))})"
        if not new.unjudged_checks() <= opened:
            return f"it leaves checks unjudged that were judged before ({', '.join(sorted(new.unjudged_checks()))})"
        return None

    def to_json(self) -> bytes:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> "AliasState":
        """Raises: ValueError, TypeError: not a state as ``to_json`` writes it (a damaged cache file)."""
        state = cls(**json.loads(data))
        if not (isinstance(state.name, str) and type(state.head_seq) is int and isinstance(state.head_sha256, str)
                and isinstance(state.head_time, str) and isinstance(state.archived, list) and _all_text(state.archived)
                and isinstance(state.promoted, list) and _all_text(state.promoted) and type(state.signed) is int
                and all(isinstance(m, dict) and _all_text(m)
                        for m in (state.aliases, state.history, state.versions, state.registered_by))
                and _all_text(state.aliases.values()) and _all_text(state.versions.values())
                and _all_text(state.registered_by.values())
                and isinstance(state.verdicts, dict) and all(isinstance(v, dict) for v in state.verdicts.values())
                and all(isinstance(held, list) and _all_text(held) for held in state.history.values())):  # fmt: skip
            raise ValueError("not an alias state")
        return state


def _verdict(gate: dict[str, Any]) -> dict[str, Any]:
    """What the state keeps of an event's gate: the summary, without the evidence a judge event adds."""
    return {k: v for k, v in gate.items() if k != "evidence"}


def _summary(gate: dict[str, Any] | None) -> GateSummary | None:
    """``gate`` as a summary, or None when it is not one (missing or mistyped fields)."""
    if not isinstance(gate, dict):
        return None
    wanted = {f.name for f in fields(GateSummary)}
    try:
        summary = GateSummary(**{k: v for k, v in gate.items() if k in wanted})
    except TypeError:
        return None
    texts = (summary.failures, summary.not_judged)
    if not isinstance(summary.passed, bool) or not all(isinstance(t, list) and _all_text(t) for t in texts):
        return None
    return summary


def _json_types(hint: Any) -> tuple[type, ...]:
    """``str | None`` → (str, NoneType); ``dict[str, Any]`` → (dict,)."""
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    return tuple(typing.get_origin(t) or t for t in members)


# What json.loads must give for each field; compared by exact type, so true is not a seq and 1 is not a flag.
_EVENT_TYPES = {name: _json_types(hint) for name, hint in typing.get_type_hints(AuditEvent).items()}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", type(None): "null"}


_UNSIGNED = ("key_id", "signature")  # legacy events were written without them
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


class Judge(typing.Protocol):
    """Judges an event against the state before it (``registry.rules.EventJudge``)."""

    def __call__(self, state: AliasState, event: AuditEvent, label: str) -> None:
        """Raises: IntegrityError: naming what the signer could not do."""

    def signs(self) -> bool:
        """Whether the store's events must be signed (it has a keyring)."""


def fold(state: AliasState, events: list[AuditEvent], judge: Judge | None = None) -> AliasState:
    """A new state: ``state`` with ``events`` applied in order (``state`` itself is left alone)."""
    new = copy.deepcopy(state)
    for event in events:
        new.apply(event, judge)
    return new


_CLEARED = re.compile(r"cleared (audit/\S+?), sha256 ")  # how `audit clear` names each object it removed


def _replaced(name: str, seen: AliasState) -> IntegrityError:
    return IntegrityError(
        f"event {seen.head_seq:012d} of '{name}' was replaced: this machine saw it with sha256 "
        f"{seen.head_sha256[:16]}…, the store now holds another event there (unless this machine's cache under "
        "registry-cache/ was edited)"
    )


class AuditLog:
    """The log of every adapter name on one bucket, with an incremental, self-checking fold.

    ``cache_dir`` keeps each name's folded state between processes; it is only a shortcut: the
    first new event must link to the cached head, and a log shorter than the cache is refused.
    """

    def __init__(self, store: ObjectStore, *, actor: str, role: str, cache_dir: Path | None = None,
                 cache_scope: str = "", signer: Signer | None = None, judge: Judge | None = None):  # fmt: skip
        """``signer`` signs what this log appends (its name and role are then the actor and role);
        ``judge`` checks every event read, so a state is never built on a forged one."""
        self.store = store
        self.signer = signer
        self.actor = signer.name if signer else actor
        self.role = signer.role if signer else role
        self.judge = judge
        self._memory: dict[str, AliasState] = {}
        # The cache format is part of the scope: a cache written before AliasState gained a field is not read.
        scope = hashlib.sha256(f"state-v4|{cache_scope}".encode()).hexdigest()[:16]
        self._cache_dir = Path(cache_dir) / "registry-cache" / scope if cache_dir else None

    def sequence(self, name: str, after: int = 0) -> list[int]:
        return sequence_of(name, [o.key for o in self.store.list(audit_prefix(name))], after)

    def head_seq(self, name: str) -> int:
        """Newest sequence number (0 for an empty log).

        With a cached state this is one or two small GETs (the next key, the cached head);
        without, one LIST.
        """
        if self._cached(name) is not None:
            return self.state(name).head_seq
        seqs = self.sequence(name)
        return seqs[-1] if seqs else 0

    def read(self, name: str, seqs: list[int]) -> list[AuditEvent]:
        """Fetch events in parallel (a log of 1,000 events is 1,000 GETs)."""
        keys = [event_key(name, s) for s in seqs]
        return [parse_event(k, b) for k, b in zip(keys, self._get_all(keys))]

    def _get_all(self, keys: list[str]) -> list[bytes]:
        if len(keys) <= 2:
            return [self.store.get(k) for k in keys]
        with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
            return list(pool.map(self.store.get, keys))

    def events(self, name: str) -> list[AuditEvent]:
        """Every event, checked from the first (hash, link, sequence, meaning).

        With ``cache_dir``, an event read before is not fetched again while the listing shows its
        key with the same ETag: a rewritten event gets a new ETag and is fetched and checked, a
        deleted or inserted one shows in the listing. At 2,100 events that is 3 LIST pages instead
        of 2,100 GETs for `audit log` and `report`. ``verify`` never uses it.

        Raises:
            IntegrityError: naming the first bad event.
        """
        listed = {o.key: o.etag for o in self.store.list(audit_prefix(name))}
        keys = [event_key(name, s) for s in sequence_of(name, list(listed))]
        kept = self._cached_events(name)
        fetch = [k for k in keys if not listed[k] or kept.get(k, ("", ""))[0] != listed[k]]
        fetched = dict(zip(fetch, self._get_all(fetch)))
        blobs = {k: fetched[k] if k in fetched else kept[k][1].encode() for k in keys}
        events = [parse_event(k, blobs[k]) for k in keys]
        fold(AliasState(name=name), events, self.judge)
        if fetch or len(kept) != len(keys):
            self._remember_events(name, {k: (listed[k], blobs[k].decode()) for k in keys if listed[k]})
        return events

    def verify(self, name: str) -> AliasState:
        """Fold the whole log from the first event, trusting nothing cached.

        Raises:
            IntegrityError: naming the first bad event; or the log is shorter than what this
                machine has already seen (newest events deleted).
        """
        return self.verified_events(name)[0]

    def verified_events(self, name: str) -> tuple[AliasState, list[AuditEvent]]:
        """``verify``, with the events it checked."""
        seen = self._cached(name)  # before listing: a cache written meanwhile by a racing writer is not "ahead"
        listed = {o.key: o.modified for o in self.store.list(audit_prefix(name))}
        events = self.read(name, sequence_of(name, list(listed)))
        state = fold(AliasState(name=name), events, self.judge)
        for event in events:
            if problem := received_problem(event.time, listed[event_key(name, event.seq)]):
                raise IntegrityError(f"event {event.key_name} of '{name}' was not written when it says: {problem}")
        if seen is not None and seen.head_seq > state.head_seq:
            raise IntegrityError(
                f"the audit log of '{name}' ends at event {state.head_seq:012d} but this machine has seen event "
                f"{seen.head_seq:012d}: the newest events were deleted"
            )
        if seen is not None and seen.head_seq > 0 and events[seen.head_seq - 1].sha256 != seen.head_sha256:
            raise _replaced(name, seen)
        self.require_unrewritten(name, events)
        self._remember(state)
        return state, events

    def require_unrewritten(self, name: str, events: list[AuditEvent] | None = None) -> None:
        """Refuse a log whose event objects were overwritten or deleted after they were written.

        Events are written once, create-only, and the bucket keeps old versions: a second version
        or a delete marker on an event key is a rewrite, even one re-signed or invisible to a
        machine without a cache. The exceptions are on the record: the objects a ``clear`` event
        names as removed by ``audit clear``.

        Raises:
            IntegrityError: naming each rewritten key.
        """
        pattern = re.compile(re.escape(audit_prefix(name)) + r"(\d{12})\.json")
        rewritten = {key: what for key, what in rewritten_keys(self.store, audit_prefix(name)).items()
                     if pattern.fullmatch(key)}  # fmt: skip
        if rewritten:  # rare: only then are the events read, for the clearings that explain them
            if events is None:
                events = self.read(name, self.sequence(name))
            cleared = {key for e in events if e.action == "clear" for key in _CLEARED.findall(e.reason)}
            rewritten = {key: what for key, what in rewritten.items() if key not in cleared}
        if rewritten:
            raise IntegrityError(
                f"the audit log of '{name}' was rewritten: "
                + "; ".join(f"{key} has {what}" for key, what in sorted(rewritten.items()))
                + " (events are written once; the bucket keeps the originals among the object versions)"
            )

    def state(self, name: str) -> AliasState:
        """The folded state now: cached events are not re-read, new ones are checked and applied.

        Raises:
            IntegrityError: the log is broken where it was read, or shorter than the cache.
        """
        cached = self._cached(name)  # before reading the store: a cache a racing writer updates is not "ahead"
        state = self._advance(name, cached) if cached is not None and cached.head_seq > 0 else None
        if state is None:
            seqs = self.sequence(name)
            head = seqs[-1] if seqs else 0
            if cached is not None and cached.head_seq > head:
                raise IntegrityError(
                    f"the audit log of '{name}' ends at event {head:012d} but this machine has seen event "
                    f"{cached.head_seq:012d}: the newest events were deleted (run `tailor audit verify {name}`)"
                )
            state = fold(AliasState(name=name), self.read(name, seqs), self.judge)
        self._remember(state)
        return state

    def _advance(self, name: str, cached: AliasState) -> AliasState | None:
        """``cached`` brought up to date by reading the keys after its head, without a LIST.

        Returns None when a new event does not link to the cached head (the caller then folds the
        whole log, naming the bad event).

        Raises:
            IntegrityError: the cached head was deleted or replaced.
        """
        new: list[AuditEvent] = []
        seq = cached.head_seq + 1
        while len(new) < _PROBE_LIMIT:
            try:
                new.append(parse_event(event_key(name, seq), self.store.get(event_key(name, seq))))
            except NotFoundError:
                break
            seq += 1
        else:  # many new events: list the rest and fetch them in parallel
            new += self.read(name, self.sequence(name, after=seq - 1))
        if not new:
            self._require_cached_head(name, cached)
            return cached
        try:
            return fold(cached, new, self.judge)
        except IntegrityError:
            # The new events do not follow what this machine saw: if the event it saw was replaced,
            # that is a rewrite, never a reason to believe the log as it reads now.
            self._require_cached_head(name, cached)
            return None

    def _require_cached_head(self, name: str, cached: AliasState) -> None:
        """Raises: IntegrityError: the newest event this machine saw was deleted or replaced."""
        key = event_key(name, cached.head_seq)
        try:
            newest = parse_event(key, self.store.get(key))
        except NotFoundError:
            raise IntegrityError(f"{key} was deleted: this machine has seen it (run `tailor audit verify {name}`)") \
                from None  # fmt: skip
        if newest.sha256 != cached.head_sha256 or canonical_sha256(newest.body()) != newest.sha256:
            raise _replaced(name, cached)

    def append(self, name: str, make: Callable[[AliasState], AuditEvent]) -> AuditEvent:
        """Append the event ``make`` builds from the current state, at the next sequence number.

        ``make`` runs again after every lost race, against the state that won, so rules are
        always judged on the log as it is when the event lands.

        Raises:
            RefusedError: whatever ``make`` refuses.
            StoreError: lost the race ``MAX_APPEND_ATTEMPTS`` times in a row.
        """
        self.require_signer()
        for attempt in range(MAX_APPEND_ATTEMPTS):
            state = self.state(name)
            draft = make(state)
            now = utc_now()
            event = replace(
                draft, actor=self.actor, role=self.role, seq=state.head_seq + 1, prev_sha256=state.head_sha256,
                # Client clocks differ: keep times non-decreasing so `audit at` can read the log in order.
                time=max(now, state.head_time) if state.head_time else now,
            )  # fmt: skip
            event = event.signed(self.signer) if self.signer else event.sealed()
            new_state = fold(state, [event], self.judge)
            try:
                put_kept(self.store, event_key(name, event.seq), event.to_json())
            except AlreadyExistsError:
                time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
                continue
            self._remember(new_state)
            return event
        raise StoreError(
            f"lost the race for the next audit event of '{name}' {MAX_APPEND_ATTEMPTS} times in a row: try again"
        )

    def require_signer(self) -> None:
        """Raises: RefusedError: this store signs its events and nobody here can sign."""
        if self.judge is not None and self.signer is None and self.judge.signs():
            raise RefusedError("this store's audit events are signed: act as a person or service of its keyring "
                               "(point credentials_file at the file `tailor user add` wrote for you)")

    def _cache_file(self, name: str) -> Path | None:
        return self._cache_dir / f"{name}.json" if self._cache_dir else None

    def _events_file(self, name: str) -> Path | None:
        return self._cache_dir / "events" / f"{name}.json" if self._cache_dir else None

    def _cached_events(self, name: str) -> dict[str, tuple[str, str]]:
        """Event key → (ETag, event JSON) as last read and checked; empty when none or damaged."""
        path = self._events_file(name)
        try:
            kept = json.loads(path.read_bytes()) if path is not None and path.is_file() else {}
        except (OSError, ValueError):
            return {}
        if not isinstance(kept, dict) or not all(isinstance(v, list) and len(v) == 2 and _all_text(v)
                                                 for v in kept.values()):  # fmt: skip
            return {}
        return {k: (v[0], v[1]) for k, v in kept.items()}

    def _remember_events(self, name: str, events: dict[str, tuple[str, str]]) -> None:
        path = self._events_file(name)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps({k: list(v) for k, v in events.items()}).encode())
        except OSError:
            pass  # the cache only saves time

    def _cached(self, name: str) -> AliasState | None:
        if name in self._memory:
            return copy.deepcopy(self._memory[name])
        path = self._cache_file(name)
        if path is None or not path.is_file():
            return None
        try:
            state = AliasState.from_json(path.read_bytes())
        except (OSError, ValueError, TypeError):
            return None  # a damaged cache is only a cache: fold from the log
        return state if state.name == name else None

    def _remember(self, state: AliasState) -> None:
        known = self._memory.get(state.name)
        self._memory[state.name] = copy.deepcopy(state)
        path = self._cache_file(state.name)
        if path is None or (known is not None and known.head_sha256 == state.head_sha256):
            return  # a serve polling every 2 s would rewrite an unchanged file 43,000 times a day
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, state.to_json())  # several processes may write the same cache at once
        except OSError:
            pass  # the cache only saves time; failing to write it loses nothing
