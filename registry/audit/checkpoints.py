"""Signed checkpoints of an audit log's folded state, so a reader without a cache replays only the newest events.

Every ``CHECKPOINT_EVERY`` events (and after any append that had to replay that many), the person
who appends writes ``checkpoints/<name>/<seq:012d>-<key id>.json``: the state folded up to event
``seq``, the hash of that event, the state's sha256, signed with their key. A reader without a
cache starts from the newest checkpoint it trusts and replays only the events after it;
``audit verify`` still replays everything and names every checkpoint that disagrees with it.

Whom a reader trusts: checkpoints signed by its own key, and by an admin's. Anyone who appends
could write one, but a lying checkpoint (a version registered by someone else, a gate that
passed) would steer another person's cold promotion into an event that every verifier refuses,
and so freeze the log for everyone. A person's own checkpoint is only a shared copy of what they
replayed themselves; an admin can change the keyring, so trusting an admin adds no one. Anything
else under ``checkpoints/`` (forged, damaged, stale, copied to another name or sequence) is named
and ignored, never believed.
"""

from __future__ import annotations

import hashlib
import json
import re

from registry.audit.events import AuditEvent, event_key, parse_event
from registry.audit.state import AliasState, fold
from registry.canonical import canonical_json, jcs
from registry.errors import AlreadyExistsError, IntegrityError, NotFoundError
from registry.event_time import utc_now
from registry.key_log import KeyLog
from registry.keyring import Keyring
from registry.object_store import ObjectStore
from registry.signing import Signer, signature_holds

CHECKPOINT_EVERY = 100
_FORMAT = 1
_FIELDS = {"format", "name", "seq", "head_sha256", "state", "state_sha256", "time", "key_id", "signature"}
_MAX_CHECKPOINT_BYTES = 16 * 1024 * 1024  # the state of a name with many thousand versions


def checkpoint_prefix(name: str) -> str:
    return f"checkpoints/{name}/"


def checkpoint_key(name: str, seq: int, kid: str) -> str:
    return f"{checkpoint_prefix(name)}{seq:012d}-{kid}.json"


def _signed_part(doc: dict) -> bytes:
    """Raises: ValueError: ``doc`` holds what RFC 8785 cannot."""
    return jcs({k: v for k, v in doc.items() if k != "signature"})


def write_checkpoint(store: ObjectStore, state: AliasState, signer: Signer) -> str:
    """Store ``state`` (folded up to its head) signed by ``signer``; returns its key.

    A checkpoint that exists already (the same signer, the same event) is left as it is. It is
    written without retention: deleting one costs a reader time, never trust.

    Raises:
        AccessDeniedError: the identity may not write under ``checkpoints/`` (made before it could).
        StoreError: the store failed.
    """
    doc = {
        "format": _FORMAT,
        "name": state.name,
        "seq": state.head_seq,
        "head_sha256": state.head_sha256,
        "state": json.loads(state.to_json()),
        "state_sha256": hashlib.sha256(jcs(json.loads(state.to_json()))).hexdigest(),
        "time": utc_now(),
        "key_id": signer.key_id,
    }
    doc["signature"] = signer.sign(_signed_part(doc))
    key = checkpoint_key(state.name, state.head_seq, signer.key_id)
    try:
        store.put(key, canonical_json(doc), create_only=True)
    except AlreadyExistsError:
        pass
    return key


def listed_checkpoints(store: ObjectStore, name: str) -> tuple[list[tuple[int, str, str]], list[str]]:
    """(seq, key, signer's key id) of each checkpoint of ``name``, and the other objects beside them."""
    pattern = re.compile(re.escape(checkpoint_prefix(name)) + r"(\d{12})-([0-9a-f]{16})\.json")
    listed, strays = [], []
    for info in store.list(checkpoint_prefix(name)):
        if match := pattern.fullmatch(info.key):
            listed.append((int(match.group(1)), info.key, match.group(2)))
        else:
            strays.append(info.key)
    return listed, strays


class Checkpoints:
    """The checkpoints of one bucket as one reader sees them, against the keyring of ``keys``
    (``reader`` is its signing key id, or None for a reader that signs nothing: it trusts only admins)."""

    def __init__(self, store: ObjectStore, keys: KeyLog, reader: str | None):
        self.store = store
        self.keys = keys
        self.reader = reader
        self.ignored: list[str] = []  # every checkpoint passed over, with why, for the person to see

    def newest(self, name: str) -> AliasState | None:
        """The state in the newest checkpoint of ``name`` that a trusted key signed and the log still
        holds; None when there is none, or the store does not sign.

        Every newer one that fails is named in ``ignored`` (and passed over).
        """
        ring = self.keys.keyring()
        if not ring.trust_root:
            return None
        listed, strays = listed_checkpoints(self.store, name)
        self.ignored += [f"{key} ignored: not a checkpoint's name" for key in strays]
        for seq, key, kid in sorted(listed, reverse=True):
            if not self._trusted(ring, kid):
                signer = ring.keys.get(kid)
                who = f"{signer.person} ({signer.role})" if signer else "a key not in the keyring"
                self.ignored.append(f"{key} ignored: signed by {who}; a reader trusts only its own and an admin's")
                continue
            try:
                return self._checked(name, seq, key, kid, ring)
            except IntegrityError as err:
                self.ignored.append(f"{key} ignored: {err}")
        return None

    def disagreements(self, name: str, events: list[AuditEvent]) -> list[str]:
        """Every object under ``name``'s checkpoints that is not a checkpoint signed by a key of the
        keyring holding the state ``events`` (the whole log, as ``audit verify`` checked it) fold to
        at its sequence number: forged, stale, lying or out of place."""
        ring = self.keys.keyring()
        listed, strays = listed_checkpoints(self.store, name)
        problems = [f"{key} under the checkpoints is not a checkpoint's name" for key in strays]
        replayed, state = {}, AliasState(name=name)
        for seq in sorted({seq for seq, _, _ in listed if seq <= len(events)}):
            state = fold(state, events[state.head_seq : seq])  # checked already: no judge needed again
            replayed[seq] = state.to_json()
        for seq, key, kid in listed:
            try:
                if kid not in ring.keys:
                    raise IntegrityError(f"key {kid} is not in the keyring")
                if self._checked(name, seq, key, kid, ring).to_json() != replayed.get(seq):
                    raise IntegrityError(f"it does not hold the replayed state of event {seq:012d}")
            except IntegrityError as err:
                problems.append(f"checkpoint {key} ignored by readers: {err}")
        return problems

    def _trusted(self, ring: Keyring, kid: str) -> bool:
        record = ring.keys.get(kid)
        return record is not None and (kid == self.reader or record.role == "admin")

    def _checked(self, name: str, seq: int, key: str, kid: str, ring: Keyring) -> AliasState:
        """The state ``key`` holds, once its signature, place and event are proven.

        Raises:
            IntegrityError: naming what is wrong with it.
        """
        try:
            doc = json.loads(self.store.get(key, max_bytes=_MAX_CHECKPOINT_BYTES))
        except (ValueError, NotFoundError) as err:
            raise IntegrityError(f"unreadable ({err})") from None
        if not isinstance(doc, dict) or set(doc) != _FIELDS or doc["format"] != _FORMAT:
            raise IntegrityError("not a checkpoint of this format")
        if (doc["name"], doc["seq"], doc["key_id"]) != (name, seq, kid):
            raise IntegrityError(
                f"it records event {doc['seq']!r} of {doc['name']!r} signed by {doc['key_id']!r}: "
                "copied from elsewhere (out of place)"
            )
        if not isinstance(doc["time"], str) or not isinstance(doc["signature"], str):
            raise IntegrityError("its time or signature is not text")
        try:
            record = ring.signing_key(kid, doc["time"])
        except IntegrityError as err:
            raise IntegrityError(f"signed by a key that could not sign then: {err}") from None
        try:
            holds = signature_holds(record.public_key, doc["signature"], _signed_part(doc))
            digest = hashlib.sha256(jcs(doc["state"])).hexdigest()
        except ValueError as err:
            raise IntegrityError(str(err)) from None
        if not holds:
            raise IntegrityError("its signature does not hold (forged or modified)")
        try:
            state = AliasState.from_json(canonical_json(doc["state"]))
        except (ValueError, TypeError) as err:
            raise IntegrityError(f"its state is malformed ({err})") from None
        if digest != doc["state_sha256"] or (state.name, state.head_seq, state.head_sha256) != (
            name,
            seq,
            doc["head_sha256"],
        ):
            raise IntegrityError("its state does not match its digest or its head")
        try:
            stored = parse_event(event_key(name, seq), self.store.get(event_key(name, seq)))
        except NotFoundError:
            raise IntegrityError(f"event {seq:012d} it starts from is not in the log") from None
        if stored.sha256 != state.head_sha256:
            raise IntegrityError(f"event {seq:012d} of the log is not the one it records (stale or forged)")
        return state
