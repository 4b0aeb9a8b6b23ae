"""The follower's swap logic against an in-memory registry and a fake loader (no model, no store)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from registry.errors import IntegrityError, NotFoundError, StoreError
from serving.follower import Follower


class FakeClassifier:
    def __init__(self, version: str, labels=("a", "b")) -> None:
        self.version, self.labels = version, list(labels)

    def predict_proba(self, texts, batch_size=32):
        first = 0.9 if self.version.endswith("1") else 0.1
        return np.array([[first, 1 - first]] * len(texts))


class FakeRegistry:
    """Alias state as a counter and a dict; ``broken`` versions fail to download like a bad hash does."""

    def __init__(self) -> None:
        self.seq: dict[str, int] = {}
        self.alias: dict[str, str] = {}
        self.broken: set[str] = set()
        self.down = False
        self.forged = False  # the log's newest event does not verify: reading it re-reads the whole log
        self.head_reads = 0
        self.downloads: list[str] = []

    def promote(self, name: str, version: str) -> None:
        self.alias[name] = version
        self.seq[name] = self.seq.get(name, 0) + 1

    def _manifest(self, version: str):
        return SimpleNamespace(version=version, content_sha256=f"sha-{version}")

    def head_seq(self, name: str) -> int:
        self.head_reads += 1
        if self.forged:
            raise IntegrityError(f"event {self.seq[name] + 1:012d} of '{name}' is unsigned")
        if self.down:
            raise StoreError("cannot reach the object store at http://127.0.0.1:1")
        return self.seq.get(name, 0)

    def require_servable(self, name: str) -> None:
        pass

    def resolve(self, name: str, alias: str = "production"):
        version = self.alias.get(name)
        return None if version is None else self._manifest(version)

    def download(self, name: str, ref: str, dest: Path):
        if self.down:
            raise StoreError("cannot reach the object store at http://127.0.0.1:1")
        self.downloads.append(ref)
        if ref in self.broken:
            raise IntegrityError(f"adapter_model.safetensors of {name} {ref}: sha256 mismatch")
        (dest / "version").write_text(ref)
        return self._manifest(ref)


def load_fake(directory: Path) -> FakeClassifier:
    return FakeClassifier((directory / "version").read_text(encoding="utf-8"))


@pytest.fixture
def registry() -> FakeRegistry:
    reg = FakeRegistry()
    reg.promote("tickets", "v1")
    return reg


@pytest.fixture
def follower(registry):
    f = Follower(registry, load_fake, ["tickets"], poll_seconds=0.01)
    f.load()
    yield f
    f.close()


def test_load_serves_the_version_the_alias_names(follower):
    served = follower.current("tickets")
    assert (served.version, served.sha256, served.alias) == ("v1", "sha-v1", "production")
    assert served.classifier.version == "v1"


def test_a_name_without_a_production_version_is_refused_at_load(registry):
    follower = Follower(registry, load_fake, ["tickets", "emails", "chats"])
    with pytest.raises(
        NotFoundError, match="no version of 'emails', 'chats' holds the alias 'production'.*tailor promote"
    ):
        follower.load()
    assert registry.downloads == [], "nothing is downloaded when any name is missing"


def test_a_promotion_swaps_the_served_version_on_the_next_poll(follower, registry):
    registry.promote("tickets", "v2")
    follower.poll_once()
    assert follower.current("tickets").version == "v2"
    assert follower.health()[0].failure is None


def test_a_request_holding_the_old_version_keeps_it_through_a_swap(follower, registry):
    in_flight = follower.current("tickets")
    registry.promote("tickets", "v2")
    follower.poll_once()
    assert in_flight.classifier.predict_proba(["x"])[0, 0] == pytest.approx(0.9)
    assert follower.current("tickets").classifier.predict_proba(["x"])[0, 0] == pytest.approx(0.1)


def test_nothing_is_downloaded_while_the_sequence_number_stays(follower, registry):
    follower.poll_once()
    follower.poll_once()
    assert registry.downloads == ["v1"]


def test_a_version_that_fails_verification_is_not_swapped_in_and_is_reported(follower, registry):
    registry.broken.add("v2")
    registry.promote("tickets", "v2")
    follower.poll_once()
    health = follower.health()[0]
    assert follower.current("tickets").version == "v1"
    assert (health.serving, health.alias_target, health.failure.version) == ("v1", "v2", "v2")
    assert "kept v1: v2 did not load: IntegrityError" in health.failure.error
    follower.poll_once()
    assert registry.downloads == ["v1", "v2"], "a broken version is not downloaded again until the alias moves"


def test_rolling_back_to_the_served_version_clears_the_failure(follower, registry):
    registry.broken.add("v2")
    registry.promote("tickets", "v2")
    follower.poll_once()
    registry.promote("tickets", "v1")
    follower.poll_once()
    health = follower.health()[0]
    assert (health.serving, health.alias_target, health.failure) == ("v1", "v1", None)


def test_an_unreachable_store_keeps_serving_and_retries(follower, registry):
    registry.promote("tickets", "v2")
    registry.down = True
    follower.poll_once()
    assert follower.current("tickets").version == "v1"
    assert "cannot read the registry" in follower.health()[0].failure.error
    registry.down = False
    follower.poll_once()
    assert follower.current("tickets").version == "v2"
    assert follower.health()[0].failure is None


def test_the_end_of_a_store_outage_clears_healthz_when_nothing_moved_meanwhile(follower, registry):
    registry.down = True
    follower.poll_once()
    assert "cannot read the registry" in follower.health()[0].failure.error
    registry.down = False
    follower.poll_once()
    assert follower.health()[0].failure is None


def test_a_version_that_did_not_load_stays_reported_through_an_outage_and_other_events(follower, registry):
    registry.broken.add("v2")
    registry.promote("tickets", "v2")
    follower.poll_once()
    registry.down = True
    follower.poll_once()
    registry.down = False
    registry.seq["tickets"] += 1  # say, a staging promotion: production still names v2
    follower.poll_once()
    health = follower.health()[0]
    assert (health.serving, health.alias_target, health.failure.version) == ("v1", "v2", "v2")
    assert registry.downloads == ["v1", "v2"], "v2 is not downloaded again while the alias has not moved"


def test_an_alias_removed_keeps_the_old_version_and_says_so(follower, registry):
    del registry.alias["tickets"]
    registry.seq["tickets"] += 1
    follower.poll_once()
    assert follower.current("tickets").version == "v1"
    assert "names no version of 'tickets' any more; still serving v1" in follower.health()[0].failure.error


def test_the_polling_thread_swaps_by_itself_and_stops_on_close(registry):
    follower = Follower(registry, load_fake, ["tickets"], poll_seconds=0.01)
    follower.load()
    follower.start()
    registry.promote("tickets", "v2")
    swapped = threading.Event()
    for _ in range(500):
        if follower.current("tickets").version == "v2":
            swapped.set()
            break
        threading.Event().wait(0.01)
    follower.close()
    assert swapped.is_set()
    assert not any(t.name == "tailor-follower" for t in threading.enumerate())


def test_repeated_or_missing_names_are_refused(registry):
    with pytest.raises(ValueError, match="repeat"):
        Follower(registry, load_fake, ["tickets", "tickets"])
    with pytest.raises(ValueError, match="at least one"):
        Follower(registry, load_fake, [])


def test_a_new_server_removes_the_download_folders_no_live_server_holds_and_nothing_else(tmp_path, monkeypatch):
    import tempfile

    from serving.follower import WorkFolder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    live = WorkFolder()
    (live.path / "tickets-v1-x").mkdir()
    killed = WorkFolder()
    (killed.path / "tickets-v2-x").mkdir()
    killed._lock.close()  # what kill -9 does to its lock, leaving the folder
    older = tmp_path / "tailor-serve-a1b2c3d4"  # named by an older Tailor: not judged
    older.mkdir()
    elsewhere = tmp_path / "keep"
    elsewhere.mkdir()
    (tmp_path / "tailor-serve-held-link").symlink_to(elsewhere)

    new = WorkFolder()

    assert new.path.is_dir() and live.path.is_dir() and (live.path / "tickets-v1-x").is_dir()
    assert not killed.path.exists() and older.is_dir() and elsewhere.is_dir()
    new.close()
    live.close()
    assert not new.path.exists() and not live.path.exists()


def test_a_history_that_does_not_verify_is_read_again_less_and_less_often(follower, registry, monkeypatch):
    """Review 28 item 8: a failing log was re-read whole on every poll (every 2 s)."""
    import serving.follower as module

    clock = [module._now()]
    monkeypatch.setattr(module, "_now", lambda: clock[0])
    registry.forged, registry.head_reads = True, 0
    reads = []
    for _ in range(60):  # 60 polls 0.01 s apart; reads wait 0.01, 0.02, 0.04 ... s after each refusal
        follower.poll_once()
        reads.append(registry.head_reads)
        clock[0] += module.timedelta(seconds=0.01)
    assert registry.head_reads <= 7, reads
    assert "refused: the audit history of 'tickets' does not verify" in follower.health()[0].failure.error
    registry.forged = False
    clock[0] += module.timedelta(seconds=module.MAX_REFUSED_BACKOFF)
    registry.promote("tickets", "v2")
    follower.poll_once()
    assert follower.current("tickets").version == "v2"
