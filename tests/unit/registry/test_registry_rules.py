"""Registry rules on an in-memory store: roles, four-eyes, gates, archive, rollback, downloads, version ids."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

import pytest

from registry.canonical import canonical_json
from registry.errors import ConfigError, IntegrityError, NotFoundError, RefusedError
from registry.fingerprint import BaseModelFingerprint
from registry.governance import RegistryRules
from registry.layout import file_key
from registry.registry import Registry
from registry.settings import StoreSettings
from tests.fake_store import FakeStore
from tests.registry_helpers import failed_gate, make_adapter_folder, passed_gate

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)


def _reg(store, role="trainer", actor="alice", base=BASE, **rules) -> Registry:
    """A registry whose production takes gate-less versions (the ``folders`` fixture has none), unless
    ``require_gate=True``: the tests of that rule ask for it."""
    settings = StoreSettings(endpoint=None, bucket="b", access_key="k", secret_key="s", role=role, actor=actor)
    return Registry(store, settings, base_model=base, rules=RegistryRules(**{"require_gate": False, **rules}))


@pytest.fixture
def store():
    return FakeStore()


@pytest.fixture
def folders(tmp_path):
    return [make_adapter_folder(tmp_path / f"a{i}", BASE, seed=i) for i in range(3)]


def test_versions_are_numbered_per_name_and_the_manifest_is_written_last(store, folders):
    trainer = _reg(store)
    assert [trainer.register(f, "tickets").version for f in folders[:2]] == ["v1", "v2"]
    assert trainer.register(folders[2], "other").version == "v1"
    v1_keys = [k for k in store.puts if k.startswith("adapters/tickets/versions/v1/")]
    assert v1_keys[-1] == "adapters/tickets/versions/v1/manifest.json"
    assert [m.version for m in trainer.versions("tickets")] == ["v1", "v2"]
    assert [e.action for e in trainer.events("tickets")] == ["register", "register"]


def test_a_refused_register_writes_nothing(store, tmp_path):
    bad = make_adapter_folder(tmp_path / "bad", BaseModelFingerprint("other/model", "c" * 64, "b" * 64))
    with pytest.raises(RefusedError, match="base model mismatch"):
        _reg(store).register(bad, "tickets")
    with pytest.raises(RefusedError, match="no path characters"):
        _reg(store).register(bad, "a/b")
    assert store.objects == {}


def test_a_lost_version_claim_moves_on_to_the_next_number(store, folders):
    store.put("adapters/tickets/claims/v1.json", b"{}", create_only=True)  # a register that died mid-upload
    assert _reg(store).register(folders[0], "tickets").version == "v2"
    with pytest.raises(NotFoundError, match="'tickets' has no version v1"):
        _reg(store).manifest("tickets", "v1")


@pytest.mark.parametrize("files_too", [False, True], ids=["claim deleted", "claim and manifest deleted"])
def test_a_deleted_claim_never_hands_out_an_existing_version(store, folders, files_too):
    trainer = _reg(store)
    trainer.register(folders[0], "tickets")
    store.delete("adapters/tickets/claims/v1.json")
    if files_too:  # then only the files say v1 is taken
        store.delete(file_key("tickets", "v1", "manifest.json"))
    v1_files = {k: v for k, v in store.objects.items() if k.startswith("adapters/tickets/versions/v1/")}
    assert trainer.register(folders[1], "tickets").version == "v2"
    assert {k: store.objects[k] for k in v1_files} == v1_files


def test_a_deleted_manifest_of_a_promoted_version_fails_verify_list_and_download(store, folders, tmp_path):
    for f in folders[:3]:
        _reg(store).register(f, "tickets")
    approver = _reg(store, role="approver", actor="bob")
    approver.promote("tickets", "v2", "production", reason="r")
    store.delete(file_key("tickets", "v2", "manifest.json"))
    store.delete(file_key("tickets", "v3", "manifest.json"))  # never promoted: reads as an unfinished upload
    with pytest.raises(IntegrityError, match="v2: its manifest is missing .* deleted; production points at it"):
        approver.verify("tickets")
    listed = approver.listing("tickets")
    assert [(item.version, item.problem is None) for item in listed] == [("v1", True), ("v2", False)]
    with pytest.raises(IntegrityError, match="v2: its manifest is missing"):
        approver.download("tickets", "production", tmp_path / "dl")
    with pytest.raises(NotFoundError, match="tickets v3 was registered but its upload never finished"):
        approver.manifest("tickets", "v3")


@pytest.mark.parametrize("alias", ["staging", "production"])
def test_promote_proves_the_version_files_first(store, folders, alias):
    _reg(store).register(folders[0], "tickets")
    key = file_key("tickets", "v1", "adapter_model.safetensors")
    store.objects[key] = store.objects[key][:-1] + b"x"
    with pytest.raises(IntegrityError, match="stored file adapter_model.safetensors is corrupted"):
        _reg(store, role="approver", actor="bob").promote("tickets", "v1", alias, reason="r")
    assert _reg(store).aliases("tickets") == {}


def test_reader_writes_nothing_and_approver_cannot_register(store, folders):
    _reg(store).register(folders[0], "tickets")
    before = dict(store.objects)
    reader = _reg(store, role="reader", actor="rita")
    for attempt in (
        lambda: reader.register(folders[1], "tickets"),
        lambda: reader.promote("tickets", "v1", "staging", reason="r"),
        lambda: reader.archive("tickets", "v1", reason="r"),
        lambda: reader.rollback("tickets", reason="r"),
    ):
        with pytest.raises(RefusedError, match="role 'reader' may only read"):
            attempt()
    with pytest.raises(RefusedError, match="role 'approver' may not register"):
        _reg(store, role="approver", actor="bob").register(folders[1], "tickets")
    assert store.objects == before
    assert reader.manifest("tickets", "v1").created_by == "alice"


def test_trainer_may_stage_but_never_move_production(store, folders):
    trainer = _reg(store)
    trainer.register(folders[0], "tickets")
    trainer.promote("tickets", "v1", "staging", reason="try it")
    colleague = _reg(store, actor="carol")
    with pytest.raises(RefusedError, match="role 'trainer' cannot move 'production'"):
        colleague.promote("tickets", "v1", "production", reason="ship")
    with pytest.raises(RefusedError, match="role 'trainer' cannot move 'production'"):
        colleague.rollback("tickets", reason="undo")
    assert trainer.aliases("tickets") == {"staging": "v1"}


def test_four_eyes_refuses_the_registrant_and_can_be_turned_off(store, folders):
    _reg(store, role="admin", actor="alice").register(folders[0], "tickets")
    with pytest.raises(RefusedError, match="four-eyes rule: alice registered tickets v1"):
        _reg(store, role="admin", actor="alice").promote("tickets", "v1", "production", reason="mine")
    event = _reg(store, role="admin", actor="alice", four_eyes_production=False).promote(
        "tickets", "v1", "production", reason="solo team"
    )
    assert (event.alias_before, event.alias_after) == (None, "v1")


def test_verify_lists_production_moves_that_four_eyes_or_the_gate_rule_would_have_refused(store, folders):
    _reg(store, role="admin", actor="alice").register(folders[0], "tickets")
    _reg(store, role="trainer", actor="carol").register(folders[1], "tickets")
    # A policy without the rules (or a client that skipped them) leaves events that chain perfectly.
    _reg(store, role="admin", actor="ALICE", four_eyes_production=False).promote(
        "tickets", "v1", "production", reason="solo"
    )
    _reg(store, role="approver", actor="bob", require_gate=True).promote(
        "tickets", "v2", "production", reason="hotfix", override=True
    )

    review = _reg(store, role="reader", actor="rita").verify("tickets").to_review

    assert review == [
        "event 000000000003: ALICE moved production to v1, which alice registered (four-eyes off, or not applied)",
        "event 000000000003: ALICE moved production to v1 without a gate decision or --override "
        "(require_gate_decision off, or not applied)",
    ]  # the approver's override is on the record already


@pytest.mark.parametrize("spelling", ["Alice", "ALICE", "ａｌｉｃｅ"])  # the last in full-width letters
def test_four_eyes_sees_one_person_whatever_the_case_or_width_of_the_name(store, folders, spelling):
    _reg(store, role="trainer", actor="alice").register(folders[0], "tickets")
    with pytest.raises(RefusedError, match="four-eyes rule"):
        _reg(store, role="approver", actor=spelling).promote("tickets", "v1", "production", reason="mine")


@pytest.mark.parametrize("actor", ["alice ", " alice", "ali\nce", "ali\u200bce", "", "a" * 129])
def test_an_actor_name_a_log_reader_could_mistake_is_refused(store, actor):
    with pytest.raises(ConfigError, match="actor .* is refused"):
        _reg(store, actor=actor)


@pytest.mark.parametrize(
    "reason, problem",
    [
        ("ok\n000000000009  2026-01-01  root (admin)  promote v9", "one line of visible text; this one holds U+000A"),
        ("\u200b", "nothing visible"),
        ("fine\u2028", "U+2028"),
    ],
)
def test_a_reason_must_be_one_line_of_visible_text(store, folders, reason, problem):
    with pytest.raises(RefusedError, match=re.escape(problem)):
        _reg(store).register(folders[0], "tickets", reason=reason)
    _reg(store).register(folders[0], "tickets")  # a register's reason stays optional
    with pytest.raises(RefusedError, match=re.escape(problem)):
        _reg(store, role="approver", actor="bob").promote("tickets", "v1", "staging", reason=reason)
    with pytest.raises(RefusedError, match="at most 2000 characters"):
        _reg(store).register(folders[1], "tickets", reason="x" * 2001)


def test_a_failed_gate_blocks_production_unless_an_approver_overrides(store, tmp_path):
    _reg(store).register(make_adapter_folder(tmp_path / "g", BASE, gate=failed_gate()), "tickets")
    approver = _reg(store, role="approver", actor="bob")
    with pytest.raises(
        RefusedError, match="failed its gate: quality: macro_f1 = 0.61, policy quality.min_macro_f1 requires >= 0.8"
    ):
        approver.promote("tickets", "v1", "production", reason="ship")
    with pytest.raises(RefusedError, match="--override is reserved to the approver role"):
        _reg(store, role="admin", actor="root").promote("tickets", "v1", "production", reason="x", override=True)
    event = approver.promote("tickets", "v1", "production", reason="known gap, hotfix", override=True)
    assert event.override is True and event.gate["passed"] is False and event.policy_sha256 == "a" * 64
    # The gate never blocks staging.
    assert _reg(store).promote("tickets", "v1", "staging", reason="try").override is False


def test_a_version_without_a_gate_decision_reaches_production_only_by_override(store, folders):
    _reg(store).register(folders[0], "tickets")
    approver = _reg(store, role="approver", actor="bob", require_gate=True)
    with pytest.raises(
        RefusedError,
        match="tickets v1 was registered without a gate decision: evaluate its folder "
        "against production .*; only an approver may promote it, with --override",
    ):
        approver.promote("tickets", "v1", "production", reason="ship")
    assert _reg(store, require_gate=True).promote("tickets", "v1", "staging", reason="try").override is False
    event = approver.promote("tickets", "v1", "production", reason="hand-built, reviewed", override=True)
    assert event.override is True and event.gate is None
    assert RegistryRules().require_gate is True


def test_a_gate_decision_whose_verdict_contradicts_its_failures_is_refused_at_register(store, tmp_path):
    edited = failed_gate() | {"passed": True}
    with pytest.raises(RefusedError, match="says passed=true with 1 failure\\(s\\): it was edited"):
        _reg(store).register(make_adapter_folder(tmp_path / "e", BASE, gate=edited), "tickets")
    assert store.objects == {}


def test_production_needs_a_gate_decided_under_the_configured_policy(store, tmp_path):
    lax = passed_gate(policy_sha256="c" * 64)
    _reg(store).register(make_adapter_folder(tmp_path / "g", BASE, gate=lax), "tickets")
    approver = _reg(store, role="approver", actor="bob", policy_sha256="a" * 64)
    with pytest.raises(RefusedError, match="gate passed under policy 1 \\(cccccccccccc\\), not the configured one"):
        approver.promote("tickets", "v1", "production", reason="ship")
    assert approver.promote("tickets", "v1", "production", reason="lax policy accepted", override=True).override


def test_production_needs_a_gate_that_compared_with_the_current_production(store, tmp_path):
    approver = _reg(store, role="approver", actor="bob", policy_sha256="a" * 64)
    for i, against in enumerate([None, None, "tickets:v1"]):
        _reg(store).register(make_adapter_folder(tmp_path / str(i), BASE, seed=i, gate=passed_gate(against)), "tickets")
    approver.promote("tickets", "v1", "production", reason="first: nothing to compare with")
    with pytest.raises(RefusedError, match="v2's gate compared it with nothing, but production holds tickets v1"):
        approver.promote("tickets", "v2", "production", reason="ship")
    assert approver.promote("tickets", "v2", "staging", reason="staging needs no comparison").alias_after == "v2"
    assert approver.promote("tickets", "v3", "production", reason="compared with v1").alias_before == "v1"
    with pytest.raises(RefusedError, match="v2's gate compared it with nothing, but production holds tickets v3"):
        approver.promote("tickets", "v2", "production", reason="ship")


def test_a_version_registered_before_manifests_recorded_against_is_judged_by_its_gate_decision(
    store, tmp_path, monkeypatch
):
    from registry.manifest import Manifest

    approver = _reg(store, role="approver", actor="bob", policy_sha256="a" * 64)
    _reg(store).register(make_adapter_folder(tmp_path / "1", BASE, seed=1, gate=passed_gate(None)), "tickets")
    approver.promote("tickets", "v1", "production", reason="first")

    def as_written_then(self):  # the registry of before 2026-11-28 wrote no gate.against
        data = {k: v for k, v in asdict(self).items() if k != "content_sha256"}
        del data["gate"]["against"]
        return data

    with monkeypatch.context() as then:
        then.setattr(Manifest, "body", as_written_then)
        then.setattr(
            Manifest, "to_json", lambda self: canonical_json({**self.body(), "content_sha256": self.content_sha256})
        )
        for i, against in ((2, "tickets:v1"), (3, None)):
            folder = make_adapter_folder(tmp_path / str(i), BASE, seed=i, gate=passed_gate(against))
            _reg(store).register(folder, "tickets")
    assert "against" not in json.loads(store.get("adapters/tickets/versions/v2/manifest.json"))["gate"]

    assert approver.promote("tickets", "v2", "production", reason="compared with v1").override is False
    with pytest.raises(RefusedError, match="v3's gate compared it with nothing, but production holds tickets v2"):
        approver.promote("tickets", "v3", "production", reason="ship")


def test_promote_needs_a_reason_a_known_alias_and_an_existing_version(store, folders):
    _reg(store).register(folders[0], "tickets")
    approver = _reg(store, role="approver", actor="bob")
    with pytest.raises(RefusedError, match="a reason is required"):
        approver.promote("tickets", "v1", "production", reason=" ")
    with pytest.raises(RefusedError, match="a reason is at most 2000 characters \\(this one has 100000\\)"):
        approver.promote("tickets", "v1", "production", reason="x" * 100_000)
    with pytest.raises(RefusedError, match="alias 'canary' is not one of staging, production"):
        approver.promote("tickets", "v1", "canary", reason="r")
    with pytest.raises(NotFoundError, match="'tickets' has no version v7"):
        approver.promote("tickets", "v7", "production", reason="r")
    with pytest.raises(RefusedError, match="'v 1' is not a version id"):
        approver.promote("tickets", "v 1", "production", reason="r")
    approver.promote("tickets", "v1", "production", reason="r")
    with pytest.raises(RefusedError, match="production already holds tickets v1"):
        approver.promote("tickets", "v1", "production", reason="r")


def test_archived_versions_cannot_be_promoted_and_held_ones_cannot_be_archived(store, folders):
    for f in folders[:2]:
        _reg(store).register(f, "tickets")
    approver = _reg(store, role="approver", actor="bob")
    approver.promote("tickets", "v1", "production", reason="r")
    with pytest.raises(RefusedError, match="tickets v1 is production: promote or roll back"):
        approver.archive("tickets", "v1", reason="old")
    approver.archive("tickets", "v2", reason="bad data")
    with pytest.raises(RefusedError, match="tickets v2 is archived and cannot be promoted"):
        approver.promote("tickets", "v2", "production", reason="r")
    with pytest.raises(RefusedError, match="archived already"):
        approver.archive("tickets", "v2", reason="again")
    assert approver.state("tickets").archived == ["v2"]


def test_rollback_returns_to_the_previous_holder_step_by_step(store, folders):
    for f in folders:
        _reg(store).register(f, "tickets")
    approver = _reg(store, role="approver", actor="bob")
    with pytest.raises(RefusedError, match="no earlier version to roll back to"):
        approver.rollback("tickets", reason="r")
    for v in ("v1", "v2", "v3"):
        approver.promote("tickets", v, "production", reason="r")
    assert approver.rollback("tickets", reason="v3 misbehaves").alias_after == "v2"
    assert approver.rollback("tickets", reason="v2 too").alias_after == "v1"
    assert approver.aliases("tickets") == {"production": "v1"}
    with pytest.raises(RefusedError, match="no earlier version"):
        approver.rollback("tickets", reason="r")


def test_rollback_refuses_a_target_whose_files_do_not_verify_or_whose_base_changed(store, folders):
    for f in folders[:2]:
        _reg(store).register(f, "tickets")
    approver = _reg(store, role="approver", actor="bob")
    approver.promote("tickets", "v1", "production", reason="r")
    approver.promote("tickets", "v2", "production", reason="r")
    key = file_key("tickets", "v1", "adapter_model.safetensors")
    good = store.objects[key]
    store.objects[key] = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(IntegrityError, match="stored file adapter_model.safetensors is corrupted"):
        approver.rollback("tickets", reason="r")
    store.objects[key] = good
    moved = _reg(store, role="approver", actor="bob", base=BaseModelFingerprint(BASE.model_id, "d" * 64, "b" * 64))
    with pytest.raises(RefusedError, match="was trained on base model"):
        moved.rollback("tickets", reason="r")
    with pytest.raises(ConfigError, match="needs the configured base model"):
        _reg(store, role="approver", actor="bob", base=None).rollback("tickets", reason="r")
    assert approver.aliases("tickets") == {"production": "v2"}


def test_download_checks_every_file_and_leaves_nothing_on_a_corrupt_one(store, folders, tmp_path):
    _reg(store).register(folders[0], "tickets")
    _reg(store, role="approver", actor="bob").promote("tickets", "v1", "production", reason="r")
    manifest = _reg(store, role="reader").download("tickets", "production", tmp_path / "out")
    assert (tmp_path / "out" / "adapter_model.safetensors").read_bytes() == (
        folders[0] / "adapter_model.safetensors"
    ).read_bytes()
    assert sorted(
        p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file()
    ) == sorted(manifest.files)
    key = file_key("tickets", "v1", "adapter_model.safetensors")
    store.objects[key] = store.objects[key][:-1] + b"\0"
    with pytest.raises(IntegrityError, match="stored file adapter_model.safetensors is corrupted"):
        _reg(store, role="reader").download("tickets", "v1", tmp_path / "out2")
    assert not (tmp_path / "out2").exists() and not list(tmp_path.glob(".out2.partial-*"))
    with pytest.raises(RefusedError, match="exists and is not an empty folder"):
        _reg(store, role="reader").download("tickets", "v1", tmp_path / "out")


def test_a_replaced_manifest_is_caught_against_its_register_event(store, folders):
    _reg(store).register(folders[0], "tickets")
    _reg(store).register(folders[1], "tickets")
    store.objects["adapters/tickets/versions/v1/manifest.json"] = store.objects[
        "adapters/tickets/versions/v2/manifest.json"
    ]
    with pytest.raises(IntegrityError, match="describes tickets v2, not tickets v1"):
        _reg(store).manifest("tickets", "v1")
    with pytest.raises(IntegrityError, match="describes tickets v2, not tickets v1"):
        _reg(store).versions("tickets")
    listed = _reg(store).listing("tickets")  # what `tailor list` shows: the healthy version too
    assert [(item.version, item.manifest is None) for item in listed] == [("v1", True), ("v2", False)]
    assert "describes tickets v2, not tickets v1" in listed[0].problem


def test_alias_at_replays_the_log_up_to_a_time(store, folders):
    for f in folders[:2]:
        _reg(store).register(f, "tickets")
    approver = _reg(store, role="approver", actor="bob")
    first = approver.promote("tickets", "v1", "production", reason="r")
    second = approver.promote("tickets", "v2", "production", reason="r")
    assert approver.alias_at("tickets", "production", "2000-01-01T00:00:00Z") == (None, None)
    assert approver.alias_at("tickets", "production", first.time) == ("v1", first)
    assert approver.alias_at("tickets", "production", second.time)[0] == "v2"
    with pytest.raises(RefusedError, match="is not ISO 8601"):
        approver.alias_at("tickets", "production", "yesterday")
    with pytest.raises(RefusedError, match="within the years 1 to 9999"):
        approver.alias_at("tickets", "production", "0001-01-01T00:00:00+01:00")  # before year 1 in UTC
    with pytest.raises(RefusedError, match="'2999-01-01' is in the future"):
        approver.alias_at("tickets", "production", "2999-01-01")
    with pytest.raises(RefusedError, match="alias 'prod' is not one of staging, production"):
        approver.alias_at("tickets", "prod", second.time)  # a typo, not an alias that was never set
    with pytest.raises(NotFoundError, match="'tickts' has no audit log"):
        approver.alias_at("tickts", "production", second.time)  # a typo, not a name whose alias was never set


def test_alias_at_answers_at_the_newest_event_even_when_its_writer_clock_ran_ahead(store, folders, monkeypatch):
    _reg(store).register(folders[0], "tickets")
    approver = _reg(store, role="approver", actor="bob")
    event = approver.promote("tickets", "v1", "production", reason="r")
    monkeypatch.setattr("registry.reading.utc_now", lambda: "2000-01-01T00:00:00+00:00")
    assert approver.alias_at("tickets", "production", event.time) == ("v1", event)
    with pytest.raises(RefusedError, match="is in the future"):
        approver.alias_at("tickets", "production", "2999-01-01")


def test_rollback_to_an_archived_version_is_refused(store, folders):
    for f in folders[:2]:
        _reg(store).register(f, "tickets")
    approver = _reg(store, role="approver", actor="bob")
    approver.promote("tickets", "v1", "production", reason="r")
    approver.promote("tickets", "v2", "production", reason="r")
    approver.archive("tickets", "v1", reason="leaked data")
    with pytest.raises(RefusedError, match="cannot roll back 'production' to tickets v1: it is archived"):
        approver.rollback("tickets", reason="r")
    assert approver.aliases("tickets") == {"production": "v2"}


class _DiesBeforeManifest(FakeStore):
    def put(self, key, data, *, create_only=False, retain=False):
        if key.endswith("/manifest.json"):
            raise KeyboardInterrupt  # the process dies between its register event and its manifest
        super().put(key, data, create_only=create_only, retain=retain)


def test_a_register_that_dies_before_its_manifest_is_invisible_and_reported_by_verify(folders):
    store = _DiesBeforeManifest()
    with pytest.raises(KeyboardInterrupt):
        _reg(store).register(folders[0], "tickets")
    reader = _reg(store, role="reader", actor="rita")
    assert reader.versions("tickets") == []
    result = reader.verify("tickets")
    assert (result.events, result.versions, result.incomplete) == (1, [], ["v1"])
    with pytest.raises(
        NotFoundError, match="tickets v1 was registered but its upload never finished .*: register the folder again"
    ):
        _reg(store, role="approver", actor="bob").promote("tickets", "v1", "production", reason="r")


def test_verify_of_a_name_without_events_is_not_found_rather_than_verified(store):
    with pytest.raises(NotFoundError, match="'tickest' has no audit log"):
        _reg(store, role="reader").verify("tickest")


def test_a_trainer_cannot_archive_a_version_production_may_roll_back_to(store, folders):
    for f in folders:
        _reg(store).register(f, "tickets")
    approver = _reg(store, role="approver", actor="bob")
    approver.promote("tickets", "v1", "production", reason="r")
    approver.promote("tickets", "v2", "production", reason="r")
    with pytest.raises(RefusedError, match="role 'trainer' cannot archive tickets v1: 'production' held it"):
        _reg(store).archive("tickets", "v1", reason="tidy up")
    assert _reg(store).archive("tickets", "v3", reason="failed experiment").action == "archive"
    assert approver.archive("tickets", "v1", reason="superseded").role == "approver"


def test_a_version_judged_again_is_promoted_on_its_newest_verdict_and_its_register_event_is_kept(store, tmp_path):
    from registry.gate_summary import GateSummary

    busy = {
        "passed": False,
        "policy_sha256": "a" * 64,
        "policy_version": "1",
        "failures": [],
        "not_judged": ["load: not judged: machine too busy (base_spread 9 is not <= 3)"],
    }
    _reg(store).register(make_adapter_folder(tmp_path / "a", BASE, gate=busy), "tickets")
    approver = _reg(store, role="approver", actor="bob", require_gate=True)
    with pytest.raises(RefusedError, match="gate could not judge load .*`tailor judge-load tickets v1`"):
        approver.promote("tickets", "v1", "production", reason="ship")
    event = _reg(store).judge(
        "tickets",
        "v1",
        GateSummary(passed=True, policy_sha256="a" * 64, policy_version="1"),
        {"details": {"p95_ratio": 1.1}},
        reason="load judged again",
    )
    assert event.action == "judge" and event.gate["evidence"] == {"details": {"p95_ratio": 1.1}}
    assert approver.state("tickets").verdict("v1").verdict == "passed"  # what `tailor list` shows
    from pipelines.console.evidence import read_evidence
    from pipelines.console.render import render_report

    report = render_report(read_evidence(approver, "tickets", "v1"), lang="en")
    assert re.search(
        r'<td id="gate"><span class="pass">passed</span>\s*<span class="small">\(judged again after registering', report
    )
    assert approver.promote("tickets", "v1", "production", reason="ship").gate["passed"] is True
    assert [e.action for e in approver.events("tickets")] == ["register", "judge", "promote"]
    assert approver.events("tickets")[0].gate["passed"] is False
    assert approver.verify("tickets").events == 3  # the promotion records the verdict judged, not the registered one
    with pytest.raises(RefusedError, match="judge needs one of"):
        _reg(store, role="reader").judge("tickets", "v1", GateSummary(True, None, None), {}, reason="r")


def test_a_version_recorded_under_an_old_base_model_id_promotes_and_rolls_back_on_the_same_files(store, folders):
    """An upgrade that names the same base differently (a configured id, a derived one) keeps its versions."""
    for f in folders[:2]:
        _reg(store).register(f, "tickets")
    renamed = BaseModelFingerprint("cl-nagoya/ruri-v3-30m", BASE.weights_sha256, BASE.tokenizer_sha256)
    approver = _reg(store, role="approver", actor="bob", base=renamed)
    approver.promote("tickets", "v1", "production", reason="r")
    approver.promote("tickets", "v2", "production", reason="r")
    approver.rollback("tickets", reason="r")
    assert approver.aliases("tickets") == {"production": "v1"}


def test_audit_clear_removes_strays_and_junk_far_ahead_on_the_record(store, folders):
    _reg(store).register(folders[0], "tickets")
    store.put("audit/tickets/000000000001.json.bak", b"junk")
    store.put("audit/tickets/000000000099.json", b"{}")
    admin = _reg(store, role="admin", actor="root")
    event = admin.clear("tickets", reason="a script's leftovers")
    assert "cleared audit/tickets/000000000001.json.bak" in event.reason and "000000000099.json" in event.reason
    assert admin.verify("tickets").events == 2


def test_audit_clear_never_removes_a_good_event(store, folders, tmp_path):
    """Review 28 item 6: verify failed only because this machine had seen a deleted newest event, and
    clear deleted the event before it; a deleted middle event must be restored, not cleared around."""
    settings = StoreSettings(endpoint=None, bucket="b", access_key="k", secret_key="s", role="admin", actor="root")
    admin = Registry(store, settings, base_model=BASE, rules=RegistryRules(require_gate=False), cache_dir=tmp_path)
    for folder in folders:
        admin.register(folder, "tickets")
    store.delete("audit/tickets/000000000003.json")
    with pytest.raises(RefusedError, match="every object of the audit log of 'tickets' is a good event"):
        admin.clear("tickets", reason="verify fails")
    assert store.exists("audit/tickets/000000000002.json")
    store.put("audit/tickets/000000000003.json", store.get("audit/tickets/000000000002.json"))  # a later event...
    store.delete("audit/tickets/000000000002.json")  # ...after a deleted one
    with pytest.raises(RefusedError, match="event 000000000002 of 'tickets' was deleted, and events follow it"):
        admin.clear("tickets", reason="verify fails")


def test_a_judge_event_can_only_finish_what_the_gate_left_unjudged_and_a_forged_one_breaks_the_log(store, tmp_path):
    from registry.audit.events import AuditEvent, event_key
    from registry.gate_summary import GateSummary

    busy = ["load: not judged: machine too busy (base_spread 9 is not <= 3)"]
    _reg(store).register(make_adapter_folder(tmp_path / "a", BASE, gate=failed_gate()), "tickets")
    _reg(store).register(
        make_adapter_folder(tmp_path / "b", BASE, seed=1, gate={**passed_gate(), "passed": False, "not_judged": busy}),
        "tickets",
    )
    trainer, cleared = _reg(store), GateSummary(passed=True, policy_sha256="a" * 64, policy_version="1")
    with pytest.raises(RefusedError, match="v1's verdict has no check left unjudged"):
        trainer.judge("tickets", "v1", cleared, {}, reason="it is fine really")  # a failed quality gate
    for forged, why in [
        (GateSummary(True, "a" * 64, "1", not_judged=busy), "passed=true with 0 failure.* and 1 check"),
        (GateSummary(True, "b" * 64, "1"), "changes the policy or production"),
        (
            GateSummary(False, "a" * 64, "1", ["quality.macro_f1 = 0.6"]),
            "changes failures outside the checks not judged \\(load\\)",
        ),
    ]:
        with pytest.raises(RefusedError, match=why):
            trainer.judge("tickets", "v2", forged, {}, reason="r")
    with pytest.raises(RefusedError, match="not the configured one"):
        _reg(store, policy_sha256="c" * 64).judge("tickets", "v2", cleared, {}, reason="r")
    trainer.judge(
        "tickets",
        "v2",
        GateSummary(False, "a" * 64, "1", ["load.p95_ratio = 2, needs <= 1.5"]),
        {},
        reason="judged: too slow",
    )
    with pytest.raises(RefusedError, match="v2's verdict has no check left unjudged"):
        trainer.judge("tickets", "v2", cleared, {}, reason="again until it passes")
    # Written past the registry by someone who may append: every reader's fold refuses it.
    head = trainer.events("tickets")[-1]
    sneaked = AuditEvent(
        action="judge",
        name="tickets",
        version="v1",
        actor="mallory",
        role="trainer",
        reason="r",
        gate=asdict(cleared),
        seq=head.seq + 1,
        time=head.time,
        prev_sha256=head.sha256,
    ).sealed()
    store.put(event_key("tickets", sneaked.seq), sneaked.to_json(), create_only=True)
    with pytest.raises(IntegrityError, match="v1's verdict has no check left unjudged"):
        _reg(store).events("tickets")
