"""The hash-chained audit log on an in-memory store: append, fold, races, and every kind of tampering."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest

from registry.audit.events import AuditEvent, event_key, parse_event, sequence_of
from registry.audit.log import AuditLog
from registry.audit.state import AliasState, fold
from registry.canonical import canonical_json, canonical_sha256
from registry.errors import IntegrityError
from tests.fake_store import FakeStore

NAME = "tickets"


def _register(version: str):
    return lambda state: AuditEvent(
        action="register", name=NAME, version=version, actor="", role="", reason="", content_sha256="c" * 64
    )


def _promote(version: str, alias: str = "production"):
    return lambda state: AuditEvent(
        action="promote",
        name=NAME,
        version=version,
        actor="",
        role="",
        reason="go",
        alias=alias,
        alias_before=state.aliases.get(alias),
        alias_after=version,
    )


def _log(store: FakeStore, **kw) -> AuditLog:
    return AuditLog(store, actor="bob", role="approver", **kw)


def _filled(store: FakeStore, registered: int = 3, promoted: int = 3) -> AuditLog:
    log = _log(store)
    for i in range(1, registered + 1):
        log.append(NAME, _register(f"v{i}"))
    for i in range(1, promoted + 1):
        log.append(NAME, _promote(f"v{i}"))
    return log


def test_events_chain_from_genesis_and_the_fold_gives_the_aliases():
    store = FakeStore()
    log = _filled(store)
    events = log.events(NAME)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[0].prev_sha256 == "0" * 64
    assert all(b.prev_sha256 == a.sha256 for a, b in zip(events, events[1:]))
    assert all(e.actor == "bob" and e.role == "approver" for e in events)
    state = log.verify(NAME)
    assert state.aliases == {"production": "v3"} and state.previous("production") == "v2"
    assert all(store.objects[event_key(NAME, e.seq)] == canonical_json(json.loads(e.to_json())) for e in events)


def test_a_fresh_log_object_reads_the_same_state_as_the_writer():
    store = FakeStore()
    writer = _filled(store)
    assert _log(store).state(NAME).to_json() == writer.state(NAME).to_json()


def test_a_modified_event_is_named():
    store = FakeStore()
    _filled(store)
    raw = json.loads(store.objects[event_key(NAME, 4)])
    raw["reason"] = "nothing to see"
    store.objects[event_key(NAME, 4)] = canonical_json(raw)
    with pytest.raises(IntegrityError, match="event 000000000004 of 'tickets' was modified"):
        _log(store).verify(NAME)


def test_a_modified_event_with_a_recomputed_hash_is_caught_by_the_next_link():
    store = FakeStore()
    _filled(store)
    forged = replace(
        AuditEvent(**json.loads(store.objects[event_key(NAME, 4)])), version="v3", alias_after="v3"
    ).sealed()
    store.objects[event_key(NAME, 4)] = forged.to_json()
    with pytest.raises(
        IntegrityError, match="does not follow event 000000000004: .* 000000000004 was replaced or inserted"
    ):
        _log(store).verify(NAME)


def test_a_deleted_event_is_named():
    store = FakeStore()
    _filled(store)
    del store.objects[event_key(NAME, 3)]
    with pytest.raises(IntegrityError, match="event 000000000003 of 'tickets' is missing \\(deleted\\)"):
        _log(store).verify(NAME)


def test_an_inserted_event_is_named():
    store = FakeStore()
    _filled(store)
    # A careful forger: a well-formed event linked to event 5, the old event 6 pushed to seq 7.
    old6 = store.objects[event_key(NAME, 6)]
    five = AuditEvent(**json.loads(store.objects[event_key(NAME, 5)]))
    forged = AuditEvent(
        action="promote",
        name=NAME,
        version="v1",
        actor="mallory",
        role="admin",
        reason="x",
        alias="production",
        alias_before="v2",
        alias_after="v1",
        seq=6,
        time=five.time,
        prev_sha256=five.sha256,
    ).sealed()
    store.objects[event_key(NAME, 6)] = forged.to_json()
    store.objects[event_key(NAME, 7)] = old6
    # The stray object is named by its key, not by the seq it claims (review F16).
    with pytest.raises(
        IntegrityError, match=r"audit/tickets/000000000007\.json records seq 6 .*inserted, moved or copied"
    ):
        _log(store).verify(NAME)


def test_a_stranger_object_in_the_log_is_named():
    store = FakeStore()
    _filled(store)
    store.objects[f"audit/{NAME}/000000000003.json.bak"] = b"{}"
    with pytest.raises(IntegrityError, match="unexpected object audit/tickets/000000000003.json.bak"):
        _log(store).verify(NAME)


def test_an_event_the_log_cannot_explain_is_refused_even_with_good_hashes():
    store = FakeStore()
    log = _filled(store, registered=1, promoted=0)
    state = log.state(NAME)
    bogus = AuditEvent(
        action="promote",
        name=NAME,
        version="v9",
        actor="m",
        role="admin",
        reason="",
        alias="production",
        alias_after="v9",
        seq=2,
        time=state.head_time,
        prev_sha256=state.head_sha256,
    ).sealed()
    with pytest.raises(IntegrityError, match="v9 was never registered"):
        fold(state, [bogus])


@pytest.mark.parametrize(
    "field, value, problem",
    [
        ("alias", ["production"], "field 'alias' is [\"production\"], not a string or null"),
        ("seq", True, "field 'seq' is true, not an integer"),
        ("override", "yes", "field 'override' is \"yes\", not true or false"),
        ("gate", [], "field 'gate' is [], not an object or null"),
        ("reason", None, "field 'reason' is null, not a string"),
        ("role", "root", "field 'role' is \"root\", not one of admin, trainer, approver, reader"),
        (
            "time",
            "yesterday",
            "field 'time': 'yesterday' is not a time as Tailor writes it (YYYY-MM-DDTHH:MM:SS.ffffff+00:00)",
        ),
        (
            "time",
            "2026-01-01T09:00:00.000000+09:00",
            "field 'time': '2026-01-01T09:00:00.000000+09:00' is not a time as "
            "Tailor writes it (YYYY-MM-DDTHH:MM:SS.ffffff+00:00)",
        ),
        ("extra", 1, "unknown field 'extra'"),
    ],
)
def test_a_correctly_chained_event_with_a_field_of_the_wrong_kind_is_named(field, value, problem):
    store = FakeStore()
    _filled(store, registered=2, promoted=1)
    raw = {**json.loads(store.objects[event_key(NAME, 3)]), field: value}
    raw["sha256"] = canonical_sha256({k: v for k, v in raw.items() if k != "sha256"})
    store.objects[event_key(NAME, 3)] = canonical_json(raw)
    with pytest.raises(IntegrityError) as err:
        _log(store).verify(NAME)
    assert str(err.value) == f"{event_key(NAME, 3)} is not an audit event (modified or inserted): {problem}"


def test_an_event_missing_fields_or_not_an_object_is_named():
    store = FakeStore()
    _filled(store, registered=1, promoted=0)
    raw = json.loads(store.objects[event_key(NAME, 1)])
    store.objects[event_key(NAME, 1)] = canonical_json({k: v for k, v in raw.items() if k not in ("gate", "seq")})
    with pytest.raises(
        IntegrityError, match="000000000001.json is not an audit event .*: fields gate, seq are missing"
    ):
        _log(store).verify(NAME)
    store.objects[event_key(NAME, 1)] = b"[1, 2]"
    with pytest.raises(IntegrityError, match="it holds a JSON list, not an object"):
        _log(store).verify(NAME)


def test_the_newest_events_deleted_are_caught_by_what_this_machine_saw(tmp_path):
    store = FakeStore()
    _filled(store, registered=1, promoted=1)
    _log(store, cache_dir=tmp_path).state(NAME)
    del store.objects[event_key(NAME, 2)]
    with pytest.raises(IntegrityError, match="ends at event 000000000001 but this machine has seen event 000000000002"):
        _log(store, cache_dir=tmp_path).verify(NAME)


def test_the_cache_is_never_trusted_over_the_log(tmp_path):
    store = FakeStore()
    log = _filled(store, registered=2, promoted=1)
    log.state(NAME)
    # Another process appends; a stale cache still yields the log's state.
    _log(store).append(NAME, _promote("v2"))
    assert _log(store, cache_dir=tmp_path).state(NAME).aliases == {"production": "v2"}
    # A cache that disagrees with the stored head is never believed: what it saw was replaced, or it was edited.
    cached = tmp_path.glob("registry-cache/*/tickets.json")
    for path in cached:
        state = AliasState.from_json(path.read_bytes())
        state.aliases = {"production": "v1"}
        state.head_sha256 = "f" * 64
        path.write_bytes(state.to_json())
    with pytest.raises(IntegrityError, match="was replaced.*cache under registry-cache/ was edited"):
        _log(store, cache_dir=tmp_path).state(NAME)


def test_a_process_that_polls_writes_its_cache_only_when_the_log_moved(tmp_path, monkeypatch):
    import registry.audit.log

    store = FakeStore()
    _filled(store, registered=1, promoted=1)
    writes = []
    write_atomic = registry.audit.log.write_atomic
    monkeypatch.setattr(
        registry.audit.log, "write_atomic", lambda path, data: writes.append(path) or write_atomic(path, data)
    )
    poller = _log(store, cache_dir=tmp_path)
    poller.state(NAME)  # `tailor serve` resolves its alias first
    for _ in range(5):  # then polls every --poll-seconds
        poller.head_seq(NAME)
    assert len(writes) == 1
    _log(store).append(NAME, _promote("v1"))
    poller.head_seq(NAME)
    assert len(writes) == 2


def test_racing_appenders_never_overwrite_each_other():
    store = FakeStore()
    _filled(store, registered=8, promoted=0)
    logs = [_log(store) for _ in range(8)]
    threads = [threading.Thread(target=log.append, args=(NAME, _promote(f"v{i + 1}"))) for i, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    state = _log(store).verify(NAME)
    events = _log(store).events(NAME)
    assert state.head_seq == 16 and [e.seq for e in events] == list(range(1, 17))
    assert state.aliases["production"] == events[-1].version
    assert sorted(e.version for e in events[8:]) == [f"v{i}" for i in range(1, 9)]
    # Every promotion recorded what it really replaced: the chain of alias_before → alias_after is unbroken.
    assert all(b.alias_before == a.alias_after for a, b in zip(events[8:], events[9:]))


def test_sequence_numbers_must_start_at_one_without_gaps():
    keys = [event_key(NAME, s) for s in (1, 2, 4)]
    with pytest.raises(IntegrityError, match="event 000000000003 of 'tickets' is missing"):
        sequence_of(NAME, keys)
    assert sequence_of(NAME, [event_key(NAME, s) for s in (2, 1, 3)], after=1) == [2, 3]


def test_an_event_written_with_a_line_break_still_prints_as_one_line():
    from pipelines.cli.versions import event_line

    forged_looking = 'ok"\n000000000009  2026-01-01T00:00:00+00:00  root (admin)  promote v9 production'
    event = AuditEvent(
        action="promote",
        name="t",
        version="v1",
        actor="bob\u2028root",
        role="approver",
        reason=forged_looking,
        alias="staging",
        alias_after="v1",
        seq=3,
    ).sealed()
    line = event_line(event)
    assert "\n" not in line and "\u2028" not in line
    assert "bob\\u2028root (approver)" in line and 'ok"\\u000a000000000009' in line


def test_the_event_fields_are_those_every_stored_event_was_hashed_with():
    # An event's hash is checked over the event as parsed, and parse_event wants every field: a field
    # added to AuditEvent would call every stored event modified (as GateSummary.against once did to
    # manifests). Add one only with a reader that hashes the stored form and accepts its absence,
    # as key_id, signature and canonical are: a legacy event is stored, read and hashed without them.
    from dataclasses import fields

    assert [f.name for f in fields(AuditEvent)] == [
        "action",
        "name",
        "version",
        "actor",
        "role",
        "reason",
        "content_sha256",
        "alias",
        "alias_before",
        "alias_after",
        "override",
        "policy_sha256",
        "gate",
        "seq",
        "time",
        "prev_sha256",
        "key_id",
        "signature",
        "canonical",
        "sha256",
    ]
    legacy = AuditEvent(
        action="register",
        name=NAME,
        version="v1",
        actor="a",
        role="trainer",
        reason="",
        seq=1,
        time="2026-01-01T00:00:00.000000+00:00",
        prev_sha256="0" * 64,
    ).sealed()
    stored = json.loads(legacy.to_json())
    assert "key_id" not in stored and "signature" not in stored
    assert parse_event("k", legacy.to_json()) == legacy


@pytest.mark.parametrize(
    "damage", [{"aliases": ["production"]}, {"history": {"production": "v1"}}, {"head_seq": "2"}, {"name": "another"}]
)
def test_a_cache_file_of_the_wrong_shape_or_name_is_ignored_not_a_crash(tmp_path, damage):
    store = FakeStore()
    _filled(store, registered=2, promoted=2)
    _log(store, cache_dir=tmp_path).state(NAME)
    [path] = tmp_path.glob("registry-cache/*/tickets.json")
    path.write_text(json.dumps({**json.loads(path.read_text(encoding="utf-8")), **damage}))
    assert _log(store, cache_dir=tmp_path).state(NAME).aliases == {"production": "v2"}


def test_events_read_before_are_not_fetched_again_but_a_rewritten_one_is_and_is_caught(tmp_path, monkeypatch):
    store = FakeStore()
    _filled(store, registered=3, promoted=3)
    fetched = []
    get = store.get
    monkeypatch.setattr(store, "get", lambda key, **kw: fetched.append(key) or get(key, **kw))

    assert len(_log(store, cache_dir=tmp_path).events(NAME)) == 6 and len(fetched) == 6
    _log(store).append(NAME, _promote("v2"))
    fetched.clear()
    assert len(_log(store, cache_dir=tmp_path).events(NAME)) == 7
    assert fetched == [event_key(NAME, 7)]  # only the new one: the listing vouches for the others' ETags

    forged = json.loads(store.objects[event_key(NAME, 2)])
    forged["reason"] = "rewritten"
    store.objects[event_key(NAME, 2)] = canonical_json(forged)  # a new ETag: fetched, then refused
    with pytest.raises(IntegrityError, match="event 000000000002 of 'tickets' was modified"):
        _log(store, cache_dir=tmp_path).events(NAME)


def test_a_damaged_events_cache_is_ignored(tmp_path):
    store = FakeStore()
    _filled(store, registered=1, promoted=1)
    _log(store, cache_dir=tmp_path).events(NAME)
    [path] = tmp_path.glob("registry-cache/*/events/tickets.json")
    path.write_text('{"audit/tickets/000000000001.json": ["etag"]}')
    assert [e.seq for e in _log(store, cache_dir=tmp_path).events(NAME)] == [1, 2]


def _replace_newest_with_own_register(store: FakeStore, log: AuditLog, *, keep_history: bool) -> None:
    """The attack of review 28 item 4: the newest event overwritten at its own seq by a valid event."""
    newest = log.verify(NAME)
    before = log.read(NAME, [newest.head_seq - 1])[0]
    forged = AuditEvent(
        action="register",
        name=NAME,
        version="v9",
        actor="bob",
        role="approver",
        reason="x",
        content_sha256="9" * 64,
        seq=newest.head_seq,
        time=before.time,
        prev_sha256=before.sha256,
    ).sealed()
    if keep_history:  # an overwrite on a versioned bucket
        store.put(event_key(NAME, newest.head_seq), forged.to_json())
    else:  # no trace in the object versions: only what a machine saw tells
        store.objects[event_key(NAME, newest.head_seq)] = forged.to_json()


@pytest.mark.parametrize("read", ["state", "verify"])
def test_the_newest_event_replaced_under_a_machine_that_saw_it_is_named(tmp_path, read):
    store = FakeStore()
    _filled(store, registered=2, promoted=2)
    seen = _log(store, cache_dir=tmp_path)
    assert seen.state(NAME).aliases == {"production": "v2"}
    _replace_newest_with_own_register(store, seen, keep_history=False)
    with pytest.raises(IntegrityError, match="event 000000000004 of 'tickets' was replaced"):
        getattr(_log(store, cache_dir=tmp_path), read)(NAME)


def test_an_overwritten_or_deleted_event_is_named_on_a_machine_without_a_cache():
    store = FakeStore()
    log = _filled(store, registered=2, promoted=2)
    _replace_newest_with_own_register(store, log, keep_history=True)
    with pytest.raises(IntegrityError, match=r"rewritten: audit/tickets/000000000004.json has 2 stored versions"):
        _log(store).verify(NAME)
    store.delete(event_key(NAME, 4))
    with pytest.raises(IntegrityError, match=r"000000000004.json has 2 stored versions, 1 delete markers"):
        _log(store).verify(NAME)
