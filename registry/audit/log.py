"""The log of every adapter name on one bucket: appending create-only, reading incrementally, verifying."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

from registry.audit.checkpoints import CHECKPOINT_EVERY, Checkpoints, write_checkpoint
from registry.audit.events import AuditEvent, audit_prefix, event_key, parse_event, sequence_of
from registry.audit.state import AliasState, Judge, all_text, fold
from registry.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    IntegrityError,
    NotFoundError,
    RefusedError,
    StoreError,
)
from registry.event_time import received_problem, utc_now
from registry.files import write_atomic
from registry.object_store import ObjectStore, put_kept, rewritten_keys
from registry.signing import Signer

MAX_APPEND_ATTEMPTS = 100
_FETCH_THREADS = 8
_PROBE_LIMIT = 8  # new events read key by key before listing instead


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

    def __init__(
        self,
        store: ObjectStore,
        *,
        actor: str,
        role: str,
        cache_dir: Path | None = None,
        cache_scope: str = "",
        signer: Signer | None = None,
        judge: Judge | None = None,
        checkpoints: Checkpoints | None = None,
    ):
        """``signer`` signs what this log appends (its name and role are then the actor and role);
        ``judge`` checks every event read, so a state is never built on a forged one; with
        ``checkpoints``, a state not cached here starts from the newest trusted checkpoint, and an
        append that had to replay ``CHECKPOINT_EVERY`` events (or lands on a multiple) writes one."""
        self.store = store
        self.signer = signer
        self.actor = signer.name if signer else actor
        self.role = signer.role if signer else role
        self.judge = judge
        self.checkpoints = checkpoints
        self._memory: dict[str, AliasState] = {}
        self._replayed: dict[str, int] = {}  # name → events the last cold state() replayed past any checkpoint
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
        rewritten = {
            key: what for key, what in rewritten_keys(self.store, audit_prefix(name)).items() if pattern.fullmatch(key)
        }
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
        if state is None and cached is None and self.checkpoints is not None:
            start = self.checkpoints.newest(name)
            state = self._advance(name, start) if start is not None else None
            if state is not None:
                self._replayed[name] = state.head_seq - start.head_seq
        if state is None:
            seqs = self.sequence(name)
            head = seqs[-1] if seqs else 0
            if cached is not None and cached.head_seq > head:
                raise IntegrityError(
                    f"the audit log of '{name}' ends at event {head:012d} but this machine has seen event "
                    f"{cached.head_seq:012d}: the newest events were deleted (run `tailor audit verify {name}`)"
                )
            state = fold(AliasState(name=name), self.read(name, seqs), self.judge)
            self._replayed[name] = state.head_seq
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
            raise IntegrityError(
                f"{key} was deleted: this machine has seen it (run `tailor audit verify {name}`)"
            ) from None
        if newest.sha256 != cached.head_sha256 or newest.digest() != newest.sha256:
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
                draft,
                actor=self.actor,
                role=self.role,
                seq=state.head_seq + 1,
                prev_sha256=state.head_sha256,
                # Client clocks differ: keep times non-decreasing so `audit at` can read the log in order.
                time=max(now, state.head_time) if state.head_time else now,
            )
            event = event.signed(self.signer) if self.signer else event.sealed()
            new_state = fold(state, [event], self.judge)
            try:
                put_kept(self.store, event_key(name, event.seq), event.to_json())
            except AlreadyExistsError:
                time.sleep(random.uniform(0, 0.01 * min(attempt + 1, 10)))
                continue
            self._remember(new_state)
            self._checkpoint(new_state, replayed=self._replayed.pop(name, 0) + 1)
            return event
        raise StoreError(
            f"lost the race for the next audit event of '{name}' {MAX_APPEND_ATTEMPTS} times in a row: try again"
        )

    def _checkpoint(self, state: AliasState, *, replayed: int) -> None:
        due = state.head_seq % CHECKPOINT_EVERY == 0 or replayed >= CHECKPOINT_EVERY
        if due and self.checkpoints is not None and self.signer is not None and self.judge and self.judge.signs():
            try:
                write_checkpoint(self.store, state, self.signer)
            except (StoreError, AccessDeniedError):
                pass  # a checkpoint only saves the next cold reader time; the event is written

    def require_signer(self) -> None:
        """Raises: RefusedError: this store signs its events and nobody here can sign."""
        if self.judge is not None and self.signer is None and self.judge.signs():
            raise RefusedError(
                "this store's audit events are signed: act as a person or service of its keyring "
                "(point credentials_file at the file `tailor user add` wrote for you)"
            )

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
        if not isinstance(kept, dict) or not all(
            isinstance(v, list) and len(v) == 2 and all_text(v) for v in kept.values()
        ):
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
