"""The console's lists: every adapter with its aliases (a broken log named, the others still shown), and the queue."""

from __future__ import annotations

import pytest

from pipelines.console.overview import adapters, waiting
from registry.audit.events import event_key
from registry.fingerprint import BaseModelFingerprint
from registry.governance import RegistryRules
from registry.registry import Registry
from registry.settings import StoreSettings
from tests.fake_store import FakeStore
from tests.registry_helpers import failed_gate, make_adapter_folder, passed_gate

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)


def _reg(store, role="trainer", actor="alice") -> Registry:
    settings = StoreSettings(endpoint=None, bucket="b", access_key="k", secret_key="s", role=role, actor=actor)
    return Registry(store, settings, base_model=BASE, rules=RegistryRules(require_gate=False))


@pytest.fixture
def store(tmp_path):
    store = FakeStore()
    alice = _reg(store)
    for i, gate in enumerate([passed_gate(), passed_gate("tickets:v1"), failed_gate(), passed_gate("tickets:v1")], 1):
        alice.register(make_adapter_folder(tmp_path / f"t{i}", BASE, seed=i, gate=gate), "tickets")
    _reg(store, "approver", "bob").promote("tickets", "v1", "production", reason="first")
    alice.promote("tickets", "v2", "staging", reason="for review")
    alice.archive("tickets", "v4", reason="superseded")
    alice.register(make_adapter_folder(tmp_path / "o", BASE, seed=9), "other")
    return store


def test_every_adapter_is_listed_with_its_aliases_and_newest_event(store):
    rows = {r.name: r for r in adapters(_reg(store, "reader", "carol"))}
    assert (rows["tickets"].production, rows["tickets"].staging, rows["tickets"].events) == ("v1", "v2", 7)
    assert (rows["tickets"].last_event.action, rows["tickets"].last_event.version) == ("archive", "v4")
    assert rows["other"].production is None and rows["other"].problem is None


def test_a_log_that_fails_its_checks_is_named_and_the_others_still_listed(store):
    key = event_key("other", 1)
    store.objects[key] = store.objects[key].replace(b'"register"', b'"promote"')
    rows = {r.name: r for r in adapters(_reg(store, "reader", "carol"))}
    assert rows["other"].problem and "other" in rows["other"].problem
    assert rows["tickets"].production == "v1"


def test_the_queue_holds_passed_unarchived_versions_newer_than_production(store):
    queue = waiting(_reg(store, "reader", "carol"))
    assert [(w.name, w.version, w.registered_by, w.staging) for w in queue] == [("tickets", "v2", "alice", True)]
