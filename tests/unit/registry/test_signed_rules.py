"""The quorum and the registry rules recorded in the keyring's first event: every reader replays
them from the store, whatever its local configuration says (an in-memory store)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from registry.audit.events import GENESIS, AuditEvent, event_key
from registry.audit.log import AuditLog
from registry.canonical import canonical_sha256
from registry.errors import IntegrityError, RefusedError
from registry.event_judge import EventJudge
from registry.event_time import utc_now
from registry.governance import RegistryRules
from registry.key_log import KeyLog
from registry.keyring import KeyEvent, key_event_key
from registry.people import init_keyring, publish
from registry.signed_rules import recorded_rules
from registry.signing import Signer, new_private_key, public_key_of, signed_bytes
from tests.fake_store import FakeStore

STRICT, LAX = RegistryRules(), RegistryRules(four_eyes_production=False, require_gate=False)
REGISTER = AuditEvent("register", "n", "v1", "alice", "trainer", "", content_sha256="c" * 64)
# bob's own script: production without a gate and without --override, which the strict rules forbid
UNGATED_PROMOTE = AuditEvent(
    "promote", "n", "v1", "bob", "approver", "ship", content_sha256="c" * 64, alias="production", alias_after="v1"
)


def _started(store: FakeStore, **kw):
    started = init_keyring(
        store, AuditLog(store, actor="x", role="admin"), "root", access_key="a", secret_key="s", bucket="b", **kw
    )
    return started, Signer("root", "admin", started.admin.signing_key)


def _person(store, trust_root, root, name, role) -> Signer:
    key = new_private_key()
    publish(store, trust_root, root, "add", name, role=role, public_key=public_key_of(key))
    return Signer(name, role, key)


def _write(store: FakeStore, events: list[AuditEvent]) -> None:
    prev = GENESIS
    for seq, (event, signer) in enumerate(events, start=1):
        event = replace(event, seq=seq, prev_sha256=prev, time=utc_now()).signed(signer)
        store.objects[event_key("n", seq)] = event.to_json()
        prev = event.sha256


def _reader(store, trust_root, rules) -> AuditLog:
    return AuditLog(store, actor="r", role="reader", judge=EventJudge(KeyLog(store, trust_root), rules))


def test_readers_with_different_local_rules_judge_a_signed_log_by_the_rules_its_keyring_recorded():
    store = FakeStore()
    started, root = _started(store, rules=STRICT)
    alice = _person(store, started.trust_root, root, "alice", "trainer")
    bob = _person(store, started.trust_root, root, "bob", "approver")
    assert KeyLog(store, started.trust_root).keyring().rules == recorded_rules(STRICT, 2)
    _write(store, [(REGISTER, alice), (UNGATED_PROMOTE, bob)])
    for local in (STRICT, LAX):
        with pytest.raises(IntegrityError, match="v1 has no gate decision and the promotion has no --override"):
            _reader(store, started.trust_root, local).state("n")


def test_a_keyring_begun_before_rules_were_recorded_keeps_its_hash_and_each_readers_local_rules():
    store = FakeStore()
    key, recovery = new_private_key(), new_private_key()
    root = Signer("root", "admin", key)
    init = KeyEvent(
        "init", "root", role="admin", public_key=public_key_of(key), recovery_public_key=public_key_of(recovery),
        reason="keyring started", seq=1, time=utc_now(), prev_sha256=GENESIS, signer=root.key_id,
    )  # fmt: skip
    init = replace(init, signature=root.sign(signed_bytes(init.body())))
    init = replace(init, sha256=canonical_sha256(init.body()))
    assert b'"rules"' not in init.to_json()  # as every keyring before them was written
    store.put(key_event_key(1), init.to_json())
    ring = KeyLog(store, init.sha256).keyring()
    assert ring.rules is None and ring.trust_root == init.sha256
    alice = _person(store, init.sha256, root, "alice", "trainer")
    bob = _person(store, init.sha256, root, "bob", "approver")
    _write(store, [(REGISTER, alice), (UNGATED_PROMOTE, bob)])
    assert _reader(store, init.sha256, LAX).state("n").aliases == {"production": "v1"}
    with pytest.raises(IntegrityError, match="no gate decision"):
        _reader(store, init.sha256, STRICT).state("n")
    _person(store, init.sha256, root, "ada", "admin")
    waiting = publish(
        store, init.sha256, root, "add", "carl", role="reader", public_key=public_key_of(new_private_key())
    )
    assert waiting.sha256 in KeyLog(store, init.sha256).keyring().pending  # the quorum of two it always had


def test_a_quorum_of_one_lets_each_admin_change_keys_alone_and_others_are_refused():
    store = FakeStore()
    started, root = _started(store, quorum=1)
    _person(store, started.trust_root, root, "ada", "admin")
    bob = _person(store, started.trust_root, root, "bob", "approver")
    ring = KeyLog(store, started.trust_root).keyring()
    assert not ring.pending and ring.signing_key(bob.key_id, utc_now()).person == "bob"
    for bad in (0, 3):
        with pytest.raises(RefusedError, match=f"quorum is {bad}, not one of 1, 2"):
            _started(FakeStore(), quorum=bad)


def test_only_the_init_event_records_rules():
    store = FakeStore()
    started, root = _started(store)
    keys = KeyLog(store, started.trust_root)
    lax = recorded_rules(LAX, 1)
    with pytest.raises(RefusedError, match="only the init event records rules"):
        keys.append(root, lambda ring: KeyEvent("add", "eve", role="reader", public_key=public_key_of(new_private_key()), rules=lax), utc_now)  # fmt: skip
    with pytest.raises(RefusedError, match="its production alias 'prod' is not one of its aliases"):
        _started(FakeStore(), rules=RegistryRules(production_alias="prod"))
