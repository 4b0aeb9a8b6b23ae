"""The keyring as stored: ``keys/<seq:012d>.json`` events read, checked, pinned to a trust root and
appended to by an admin, each write create-only (the rules they are folded under: ``registry.keyring``)."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Callable

from registry.canonical import canonical_sha256
from registry.errors import AlreadyExistsError, IntegrityError, RefusedError, StoreError
from registry.event_time import received_problem
from registry.files import write_atomic
from registry.keyring import KEYS_PREFIX, KeyEvent, Keyring, key_event_key
from registry.object_store import ObjectStore, put_kept
from registry.signing import Signer, signed_bytes

_KEY_EVENT_FIELDS = {f.name for f in fields(KeyEvent)}


def parse_key_event(key: str, data: bytes) -> KeyEvent:
    """Raises: IntegrityError: the object is not a key event (naming its key)."""
    import json

    try:
        raw = json.loads(data)
        if not isinstance(raw, dict) or set(raw) | {"rules"} != _KEY_EVENT_FIELDS:
            raise ValueError(f"fields are {sorted(raw) if isinstance(raw, dict) else type(raw).__name__}")
        event = KeyEvent(**raw)
        if not all(
            isinstance(getattr(event, n), str)
            for n in ("action", "person", "role", "kind", "time", "prev_sha256", "signer", "signature", "sha256")
        ):
            raise ValueError("a text field holds something else")
        if type(event.seq) is not int:
            raise ValueError("seq is not an integer")
    except (ValueError, TypeError) as err:
        raise IntegrityError(f"{key} is not a key event (modified or inserted): {err}") from None
    return event


class KeyLog:
    """The keyring on one bucket: read, pinned to a trust root, and appended to by an admin."""

    def __init__(self, store: ObjectStore, trust_root: str | None = None, *, pin_file: Path | None = None):
        """``pin_file`` remembers the first trust root this machine saw where none is configured, so
        a keyring later hidden (delete markers on ``keys/``) or replaced is refused, not read as a
        store that never signed."""
        self.store = store
        self.trust_root = trust_root
        self._pin_file = pin_file
        self._ring: Keyring | None = None

    def exists(self) -> bool:
        return self.store.exists(key_event_key(1))

    def keyring(self, *, refresh: bool = False) -> Keyring:
        """The folded keyring, checked from event 1 and against the pinned trust root.

        ``refresh`` reads the events written since the last call (one GET when there are none).

        Raises:
            IntegrityError: a broken key log, or one that does not start at the pinned trust root.
        """
        from registry.audit.events import sequence_of  # the audit log's rule: from 1, no gaps, no strangers

        if self._ring is None:
            listed = {o.key: o.modified for o in self.store.list(KEYS_PREFIX)}
            ring = Keyring()
            for seq in sequence_of("keyring", list(listed), prefix=KEYS_PREFIX):
                key = key_event_key(seq)
                event = parse_key_event(key, self.store.get(key))
                if problem := received_problem(event.time, listed[key]):
                    raise IntegrityError(f"{event.label} was not written when it says: {problem}")
                ring.apply(event)
            self._ring = self._pinned(ring)
        elif refresh:
            from registry.errors import NotFoundError

            while True:
                key = key_event_key(self._ring.head_seq + 1)
                try:
                    data = self.store.get(key)
                except NotFoundError:
                    break
                self._ring.apply(parse_key_event(key, data))
        return self._ring

    def _pinned(self, ring: Keyring) -> Keyring:
        pin = self.trust_root or self._remembered()
        if pin and ring.trust_root != pin:
            found = ring.trust_root[:16] + "…" if ring.trust_root else "no keyring"
            whence = "pins" if self.trust_root else f"saw first (remembered in {self._pin_file})"
            raise IntegrityError(
                f"the store's keyring does not start at the trust root this machine {whence} "
                f"({pin[:16]}…) but at {found}: it was replaced or hidden, or this is another "
                "store"
            )
        if ring.trust_root and not pin and self._pin_file is not None:
            try:
                self._pin_file.parent.mkdir(parents=True, exist_ok=True)
                write_atomic(self._pin_file, ring.trust_root.encode())
            except OSError:
                pass  # the pin in memory below still holds for this process
        if ring.trust_root:
            self.trust_root = ring.trust_root  # once seen, never none
        return ring

    def _remembered(self) -> str:
        try:
            return self._pin_file.read_text(encoding="utf-8").strip() if self._pin_file is not None else ""
        except FileNotFoundError:
            return ""

    def append(self, signer: Signer, make: Callable[[Keyring], KeyEvent], now: Callable[[], str]) -> KeyEvent:
        """Sign and write the event ``make`` builds from the current keyring, at the next sequence number.

        Raises:
            RefusedError: the event breaks a keyring rule (checked before anything is written).
            IntegrityError: the keyring as stored does not verify.
            StoreError: lost the race for the next sequence number repeatedly.
        """
        for _ in range(20):
            ring = self.keyring(refresh=True)
            draft = make(ring)
            stamp = now()
            event = replace(
                draft,
                seq=ring.head_seq + 1,
                prev_sha256=ring.head_sha256,
                signer=signer.key_id,
                time=stamp,
                signature="",
                sha256="",
            )
            event = replace(event, signature=signer.sign(signed_bytes(event.body())))
            event = replace(event, sha256=canonical_sha256(event.body()))
            trial = _copy(ring)
            try:
                trial.apply(event)
            except IntegrityError as err:  # our own event, judged before it is written: a refusal
                raise RefusedError(str(err)) from None
            try:
                put_kept(self.store, key_event_key(event.seq), event.to_json())
            except AlreadyExistsError:
                continue
            self._ring = trial
            if event.seq == 1:
                self.trust_root = event.sha256
            return event
        raise StoreError("lost the race for the next key event 20 times in a row: try again")


def _copy(ring: Keyring) -> Keyring:
    import copy

    return copy.deepcopy(ring)
