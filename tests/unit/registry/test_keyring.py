"""The keyring's rules on an in-memory store: who may change it, second-admin confirmation, the
recovery key, disabled keys, and the trust root that pins it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from registry.audit.events import AuditEvent
from registry.audit.log import AuditLog
from registry.canonical import canonical_sha256
from registry.errors import ConfigError, IntegrityError, RefusedError
from registry.event_judge import EventJudge
from registry.event_time import utc_now
from registry.governance import RegistryRules
from registry.key_log import KeyLog
from registry.keyring import key_event_key
from registry.people import init_keyring, publish
from registry.signing import Signer, new_private_key, public_key_of
from tests.conftest import REPO
from tests.fake_store import FakeStore


def _started(store: FakeStore):
    started = init_keyring(
        store, AuditLog(store, actor="x", role="admin"), "root", access_key="a", secret_key="s", bucket="b"
    )
    return started, Signer("root", "admin", started.admin.signing_key)


def _add(store, trust_root, signer, name, role="approver") -> tuple[Signer, str]:
    key = new_private_key()
    event = publish(store, trust_root, signer, "add", name, role=role, public_key=public_key_of(key))
    return Signer(name, role, key), event.sha256


def test_a_key_added_while_two_admins_exist_counts_only_once_another_admin_confirms():
    store = FakeStore()
    started, root = _started(store)
    ada, _ = _add(store, started.trust_root, root, "ada", "admin")  # one admin: no confirmation needed
    bob, pending = _add(store, started.trust_root, root, "bob")
    ring = KeyLog(store, started.trust_root).keyring()
    assert pending in ring.pending and ring.keys[bob.key_id].valid_from is None
    with pytest.raises(IntegrityError, match="waits for a second admin"):
        ring.signing_key(bob.key_id, utc_now())
    with pytest.raises(RefusedError, match="cannot also confirm"):
        publish(store, started.trust_root, root, "confirm", "bob", confirms=pending)
    publish(store, started.trust_root, ada, "confirm", "bob", confirms=pending)
    assert KeyLog(store, started.trust_root).keyring().signing_key(bob.key_id, utc_now()).person == "bob"


def test_non_admins_cannot_change_the_keyring_and_the_recovery_key_can():
    store = FakeStore()
    started, root = _started(store)
    bob, _ = _add(store, started.trust_root, root, "bob")
    with pytest.raises(RefusedError, match="only an admin or the recovery key"):
        _add(store, started.trust_root, bob, "mallory", "admin")
    recovery = Signer("recovery", "admin", started.recovery_key)
    _add(store, started.trust_root, recovery, "newroot", "admin")
    assert "newroot" in KeyLog(store, started.trust_root).keyring().people


def test_a_disabled_key_signs_nothing_after_and_a_service_never_approves():
    store = FakeStore()
    started, root = _started(store)
    bob, _ = _add(store, started.trust_root, root, "bob")
    publish(store, started.trust_root, root, "disable", "bob")
    with pytest.raises(IntegrityError, match="disabled"):
        KeyLog(store, started.trust_root).keyring().signing_key(bob.key_id, utc_now())
    with pytest.raises(RefusedError, match="a service may act as reader or trainer only"):
        publish(
            store,
            started.trust_root,
            root,
            "add",
            "svc",
            role="approver",
            kind="service",
            public_key=public_key_of(new_private_key()),
        )


def test_a_keyring_not_starting_at_the_pinned_trust_root_is_refused():
    store = FakeStore()
    _started(store)
    with pytest.raises(IntegrityError, match="does not start at the trust root this machine pins"):
        KeyLog(store, "f" * 64).keyring()


def test_a_rewritten_key_event_is_named():
    store = FakeStore()
    started, root = _started(store)
    _add(store, started.trust_root, root, "bob")
    raw = json.loads(store.objects[key_event_key(2)])
    raw["role"] = "admin"
    raw["sha256"] = canonical_sha256({k: v for k, v in raw.items() if k != "sha256"})
    store.objects[key_event_key(2)] = json.dumps(raw).encode()
    with pytest.raises(IntegrityError, match="key event 000000000002: its signature does not hold"):
        KeyLog(store, started.trust_root).keyring()


def test_an_event_signed_as_someone_else_is_named_by_the_judge():
    from registry.audit.state import AliasState

    store = FakeStore()
    started, root = _started(store)
    bob, _ = _add(store, started.trust_root, root, "bob")
    judge = EventJudge(KeyLog(store, started.trust_root), RegistryRules())
    event = AuditEvent(
        action="register",
        name="n",
        version="v1",
        actor="alice",
        role="trainer",
        reason="",
        content_sha256="c" * 64,
        seq=1,
        time=utc_now(),
        prev_sha256="0" * 64,
    )
    with pytest.raises(IntegrityError, match="names 'alice' .trainer. but was signed by bob .approver."):
        judge(AliasState(name="n"), event.signed(bob), "event 1")
    with pytest.raises(IntegrityError, match="signature does not hold"):
        judge(AliasState(name="n"), replace(event.signed(bob), actor="bob", role="approver"), "event 1")


def test_a_process_that_opened_the_store_before_its_keyring_began_takes_no_unsigned_event_after():
    store = FakeStore()
    log = AuditLog(store, actor="olga", role="admin", judge=EventJudge(KeyLog(store), RegistryRules()))
    register = AuditEvent(
        action="register", name="n", version="v1", actor="olga", role="admin", reason="", content_sha256="c" * 64
    )
    log.append("n", lambda state: register)
    started, _ = _started(store)
    assert started.legacy == {"n": [1, log.state("n").head_sha256]}
    with pytest.raises(RefusedError, match="signed: act as a person"):
        log.append("n", lambda state: replace(register, version="v2"))
    forged = replace(register, version="v2", seq=2, time=utc_now(), prev_sha256=log.state("n").head_sha256).sealed()
    store.objects["audit/n/000000000002.json"] = forged.to_json()
    with pytest.raises(IntegrityError, match="is unsigned, but this store signs every event"):
        log.state("n")


def _raw_key_event(store, ring, signer, **fields):
    from registry.keyring import KeyEvent
    from registry.signing import signed_bytes

    event = KeyEvent(seq=ring.head_seq + 1, prev_sha256=ring.head_sha256, signer=signer.key_id, **fields)
    event = replace(event, signature=signer.sign(signed_bytes(event.body())))
    event = replace(event, sha256=canonical_sha256(event.body()))
    store.put(key_event_key(event.seq), event.to_json())
    return event


def test_a_key_event_backdated_to_before_the_second_admin_is_refused():
    """Review 28 item 1: root dates a raw `add` to when it was the only admin, to skip confirmation."""
    store = FakeStore()
    started, root = _started(store)
    _add(store, started.trust_root, root, "ada", "admin")
    ring = KeyLog(store, started.trust_root).keyring()
    _raw_key_event(
        store,
        ring,
        root,
        action="add",
        person="mallory",
        role="approver",
        public_key=public_key_of(new_private_key()),
        time=ring.keys[root.key_id].valid_from,
    )
    with pytest.raises(
        IntegrityError,
        match="key event 000000000003 .add mallory. has a time the keyring cannot "
        "explain: it is dated .*, before the event it follows",
    ):
        KeyLog(store, started.trust_root).keyring()


def _judged_log(store, trust_root):
    return AuditLog(store, actor="", role="", judge=EventJudge(KeyLog(store, trust_root), RegistryRules()))


def test_an_event_a_disabled_key_signs_later_and_dates_before_its_disable_is_refused():
    import datetime as dt

    store = FakeStore()
    started, root = _started(store)
    bob, _ = _add(store, started.trust_root, root, "bob", "trainer")
    before_disable = utc_now()
    publish(store, started.trust_root, root, "disable", "bob")
    event = AuditEvent(
        action="register",
        name="n",
        version="v1",
        actor="bob",
        role="trainer",
        reason="r",
        content_sha256="c" * 64,
        seq=1,
        time=before_disable,
        prev_sha256="0" * 64,
    ).signed(bob)
    store.put("audit/n/000000000001.json", event.to_json())
    store.received["audit/n/000000000001.json"] += dt.timedelta(hours=1)  # written an hour after the disable
    with pytest.raises(IntegrityError, match="was not written when it says: .* backdated by 1:00"):
        _judged_log(store, started.trust_root).verify("n")


@pytest.mark.parametrize(
    "times",
    [
        ("2099-01-01T00:00:00.000000+00:00",),
        ("now", "2001-01-01T00:00:00.000000+00:00"),
        ("now", "2099-01-01 00:00:00"),
    ],
)
def test_event_times_in_the_future_running_backwards_or_in_another_format_are_refused(times):
    """Review 28 item 1: a signer dating an event 2099 would otherwise stamp every later honest event 2099."""
    store = FakeStore()
    started, root = _started(store)
    carol, _ = _add(store, started.trust_root, root, "carol", "trainer")
    prev = "0" * 64
    for seq, when in enumerate(times, start=1):
        event = AuditEvent(
            action="register",
            name="m",
            version=f"v{seq}",
            actor="carol",
            role="trainer",
            reason="r",
            content_sha256="c" * 64,
            seq=seq,
            time=utc_now() if when == "now" else when,
            prev_sha256=prev,
        ).signed(carol)
        store.objects[f"audit/m/{seq:012d}.json"], prev = event.to_json(), event.sha256
    with pytest.raises(
        IntegrityError,
        match=f"{len(times):012d}.*(in the future|before the event it follows|is not a time as Tailor writes it)",
    ):
        _judged_log(store, started.trust_root).verify("m")


def test_one_admin_cannot_disable_the_other_to_then_act_alone():
    """Review 28 item 2: `user disable ada` then `user rotate bob` let root sign as bob with no second admin."""
    store = FakeStore()
    started, root = _started(store)
    ada, _ = _add(store, started.trust_root, root, "ada", "admin")
    disabled = publish(store, started.trust_root, root, "disable", "ada")
    ring = KeyLog(store, started.trust_root).keyring()
    assert disabled.sha256 in ring.pending and ring.signing_key(ada.key_id, utc_now()).person == "ada"
    new_bob = new_private_key()
    _, bob_pending = _add(store, started.trust_root, root, "bob")
    rotated = publish(store, started.trust_root, root, "rotate", "ada", role="admin", public_key=public_key_of(new_bob))
    ring = KeyLog(store, started.trust_root).keyring()
    assert bob_pending in ring.pending and rotated.sha256 in ring.pending
    with pytest.raises(IntegrityError, match="waits for a second admin"):
        ring.signing_key(Signer("ada", "admin", new_bob).key_id, utc_now())
    # ada's own key keeps counting until a second admin confirms its successor; she can refuse, or confirm the disable
    assert ring.signing_key(ada.key_id, utc_now()).person == "ada"
    publish(store, started.trust_root, ada, "confirm", "ada", confirms=disabled.sha256)
    with pytest.raises(IntegrityError, match="disabled"):
        KeyLog(store, started.trust_root).keyring().signing_key(ada.key_id, utc_now())


def test_the_recovery_key_alone_cannot_change_the_keyring_while_two_admins_exist():
    store = FakeStore()
    started, root = _started(store)
    _add(store, started.trust_root, root, "ada", "admin")
    recovery = Signer("recovery", "admin", started.recovery_key)
    mallory, pending = _add(store, started.trust_root, recovery, "mallory", "approver")
    ring = KeyLog(store, started.trust_root).keyring()
    assert pending in ring.pending and ring.keys[mallory.key_id].valid_from is None


def test_a_machine_that_once_saw_a_keyring_never_reads_the_store_as_unsigned(tmp_path):
    """Review 28 item 5: delete markers on keys/ made an unpinned reader accept unsigned events again."""
    from registry.registry import Registry
    from registry.settings import StoreSettings

    store = FakeStore()
    _started(store)
    reader = StoreSettings(
        endpoint="http://127.0.0.1:1", bucket="b", access_key="a", secret_key="s", role="reader", actor="srv"
    )
    assert Registry(store, reader, cache_dir=tmp_path).signs
    for key in [k for k in store.objects if k.startswith("keys/")]:
        store.delete(key)
    with pytest.raises(IntegrityError, match="this machine saw first .* but at no keyring"):
        Registry(store, reader, cache_dir=tmp_path).signs
    with pytest.raises(ConfigError, match="trust_root: this store signs"):
        Registry(_signing_store(), reader).require_servable("n")


def _signing_store() -> FakeStore:
    store = FakeStore()
    _started(store)
    return store


def _independent_verdict(store: FakeStore, tmp_path, name: str, trust_root: str) -> str:
    """What docs/verify_audit_log.py says of a copy of the store's keys/ and audit/NAME/."""
    import importlib.util

    for key, data in store.objects.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(data)
    script = REPO / "docs" / "verify_audit_log.py"
    spec = importlib.util.spec_from_file_location("verify_audit_log", script)
    verifier = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verifier)
    try:
        verifier.main(str(tmp_path), name, trust_root)
    except SystemExit as refused:
        return str(refused)
    return "verified"


def test_the_independent_verifier_refuses_what_tailor_refuses(tmp_path):
    """Review 28 item 9: it took keys waiting for confirmation as valid and never checked the sealed legacy head."""
    store = FakeStore()
    olga = AuditLog(store, actor="olga", role="admin")
    olga.append(
        "old",
        lambda state: AuditEvent(
            action="register",
            name="old",
            version="v1",
            actor="",
            role="",
            reason="before signing",
            content_sha256="c" * 64,
        ),
    )
    started, root = _started(store)
    _add(store, started.trust_root, root, "ada", "admin")
    bob, _ = _add(store, started.trust_root, root, "bob", "trainer")  # waits for ada
    event = AuditEvent(
        action="register",
        name="n",
        version="v1",
        actor="bob",
        role="trainer",
        reason="r",
        content_sha256="c" * 64,
        seq=1,
        time=utc_now(),
        prev_sha256="0" * 64,
    ).signed(bob)
    store.put("audit/n/000000000001.json", event.to_json())
    assert "not valid at" in _independent_verdict(store, tmp_path / "a", "n", started.trust_root)
    assert _independent_verdict(store, tmp_path / "b", "old", started.trust_root) == "verified"
    legacy = json.loads(store.objects["audit/old/000000000001.json"])
    legacy["reason"] = "rewritten after the keyring sealed it"
    legacy["sha256"] = canonical_sha256({k: v for k, v in legacy.items() if k != "sha256"})
    store.objects["audit/old/000000000001.json"] = json.dumps(legacy).encode()
    assert "not the legacy history the keyring sealed" in _independent_verdict(
        store, tmp_path / "c", "old", started.trust_root
    )
    future = replace(event, time="2099-01-01T00:00:00.000000+00:00", key_id=None, signature=None).sealed()
    store.objects["audit/n/000000000001.json"] = future.to_json()
    assert "dated in the future" in _independent_verdict(store, tmp_path / "d", "n", started.trust_root)


def test_new_events_are_signed_over_rfc8785_and_events_signed_before_keep_verifying(tmp_path):
    """Numbers are where the two canonical forms differ: 1.0 and 1e-07 are "1" and "1e-7" in RFC 8785."""
    import hashlib

    import rfc8785

    from registry.audit.events import parse_event
    from registry.canonical import canonical_json
    from registry.signing import signature_holds

    store = FakeStore()
    started, root = _started(store)
    bob, _ = _add(store, started.trust_root, root, "bob", "trainer")
    gate = {"passed": True, "policy_sha256": "p" * 64, "policy_version": "1", "failures": [], "against": None}
    # As written before RFC 8785: signed and hashed over canonical_json, no `canonical` field.
    before = AuditEvent("register", "n", "v1", "bob", "trainer", "r", content_sha256="c" * 64, gate={**gate, "load": 1.0, "p": 1e-07}, seq=1, time=utc_now(), prev_sha256="0" * 64, key_id=bob.key_id, signature="")  # fmt: skip
    unsigned = {k: v for k, v in before.body().items() if k != "signature"}
    assert canonical_json(unsigned) != rfc8785.dumps(unsigned)
    before = replace(before, signature=bob.sign(canonical_json(unsigned)))
    before = replace(before, sha256=canonical_sha256(before.body()))
    assert b"canonical" not in before.to_json()
    store.put("audit/n/000000000001.json", before.to_json())
    log = AuditLog(store, actor="bob", role="trainer", signer=bob, judge=EventJudge(KeyLog(store), RegistryRules()))
    after = log.append("n", lambda state: replace(before, version="v2", key_id=None, signature=None, sha256=""))

    assert after.canonical == "rfc8785"
    body = {k: v for k, v in after.body().items() if k not in ("signature", "sha256")}
    assert signature_holds(public_key_of(bob.private_key), after.signature, rfc8785.dumps(body))
    assert after.sha256 == hashlib.sha256(rfc8785.dumps(after.body())).hexdigest()
    fresh = AuditLog(store, actor="r", role="reader", judge=EventJudge(KeyLog(store), RegistryRules()))
    assert fresh.verify("n").head_seq == 2
    assert _independent_verdict(store, tmp_path / "copy", "n", started.trust_root) == "verified"

    # Claiming the other form for a signed event breaks its hash; a form this version does not know is named.
    stored = json.loads(store.objects["audit/n/000000000002.json"])
    store.objects["audit/n/000000000002.json"] = json.dumps(
        {k: v for k, v in stored.items() if k != "canonical"}
    ).encode()
    with pytest.raises(IntegrityError, match="was modified"):
        fresh.verify("n")
    with pytest.raises(IntegrityError, match='field \'canonical\' is "jcs-2", not "rfc8785"'):
        parse_event("k", json.dumps({**stored, "canonical": "jcs-2"}).encode())
