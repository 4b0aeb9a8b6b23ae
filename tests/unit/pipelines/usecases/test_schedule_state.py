"""The scheduled `watch` flow's memory of processed batches (pure file logic, no Prefect run)."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pipelines.usecases.watch import (
    ProcessedBatch,
    new_batches,
    processed_batches,
    record_processed,
    watch_lock,
)
from registry.errors import ConfigError


def _processed(digest: str) -> ProcessedBatch:
    return ProcessedBatch(sha256=digest, file="elsewhere.csv", status="promoted")


def test_only_batch_files_whose_content_was_never_processed_are_new_oldest_first(tmp_path):
    old, new, seen, other = tmp_path / "a.csv", tmp_path / "b.jsonl", tmp_path / "c.parquet", tmp_path / "notes.txt"
    for i, path in enumerate((old, new, seen, other)):
        path.write_text(f"content {i}")
        os.utime(path, (1000 + i, 1000 + i))
    os.utime(old, (5000, 5000))  # arrived last although written first
    seen_digest = hashlib.sha256(seen.read_bytes()).hexdigest()

    fresh, arriving = new_batches(tmp_path, [_processed(seen_digest)], settle_seconds=60)

    assert [a.path.name for a in fresh] == ["b.jsonl", "a.csv"] and arriving == []
    assert fresh[1].sha256 == hashlib.sha256(b"content 0").hexdigest()


def test_a_renamed_batch_with_the_same_content_is_not_new_but_an_edited_one_is(tmp_path):
    batch = tmp_path / "batch.csv"
    batch.write_text("text,label\nhi,a\n")
    done = [new_batches(tmp_path, [], 0)[0][0].processed("promoted")]
    batch.rename(tmp_path / "renamed.csv")

    assert new_batches(tmp_path, done, 0) == ([], [])
    (tmp_path / "renamed.csv").write_text("text,label\nhi,b\n")
    assert len(new_batches(tmp_path, done, 0)[0]) == 1


def test_a_batch_changed_within_the_settle_time_or_hidden_waits_while_a_settled_one_is_new(tmp_path):
    settled, copying, hidden = tmp_path / "monday.csv", tmp_path / "tuesday.csv", tmp_path / ".tuesday.csv"
    for path in (settled, copying, hidden):
        path.write_text("text,label\nhi,a\n")
    os.utime(settled, (time.time() - 61, time.time() - 61))

    fresh, arriving = new_batches(tmp_path, [], settle_seconds=60)

    assert [a.path.name for a in fresh] == ["monday.csv"] and arriving == [copying]
    os.utime(copying, (time.time() - 61, time.time() - 61))  # the copy finished a minute ago
    assert [a.path.name for a in new_batches(tmp_path, [], settle_seconds=60)[0]] == ["monday.csv", "tuesday.csv"]


def test_a_batch_that_changes_while_it_is_read_waits(tmp_path, monkeypatch):
    batch = tmp_path / "growing.csv"
    batch.write_text("text,label\nhi,a\n")
    read_bytes = Path.read_bytes

    def read_then_grow(path):
        content = read_bytes(path)
        with open(path, "a", encoding="utf-8") as fh:  # the copy goes on while the watch reads
            fh.write("more,a\n")
        return content

    monkeypatch.setattr(Path, "read_bytes", read_then_grow)
    assert new_batches(tmp_path, [], settle_seconds=0) == ([], [batch])


def test_a_processed_file_left_unchanged_is_not_read_again_but_one_edited_in_place_is(tmp_path, monkeypatch):
    batch = tmp_path / "monday.csv"
    batch.write_text("text,label\nhi,a\n")
    done = [new_batches(tmp_path, [], 0)[0][0].processed("promoted", "v1")]
    reads = []
    read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda path: reads.append(path.name) or read_bytes(path))

    assert new_batches(tmp_path, done, 0) == ([], []) and reads == []
    mtime = batch.stat().st_mtime_ns
    batch.write_text("text,label\nhi,b\n")  # same size, another modification time
    os.utime(batch, ns=(mtime - 10**9, mtime - 10**9))  # another time for certain where timestamps are coarse
    assert [a.path.name for a in new_batches(tmp_path, done, 0)[0]] == ["monday.csv"] and reads == ["monday.csv"]


def test_the_state_record_keeps_every_processed_batch_in_order(tmp_path):
    state = tmp_path / "schedule" / "support.json"
    assert processed_batches(state) == []

    record_processed(state, ProcessedBatch(sha256="1" * 64, file="a.csv", status="promoted", version="v1"))
    record_processed(state, ProcessedBatch(sha256="2" * 64, file="b.csv", status="rejected_data"))

    assert [(e.file, e.status, e.version) for e in processed_batches(state)] == [
        ("a.csv", "promoted", "v1"),
        ("b.csv", "rejected_data", None),
    ]
    assert sorted(p.name for p in state.parent.iterdir()) == ["support.json"]  # no aside file left


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (b"", "is not JSON (Expecting value"),
        (b"\xff\xfe", "is not JSON ("),
        (b"{}", "holds a JSON dict, not a list"),
        (b'[{"sha256": "1", "file": "a.csv"}]', "has a damaged record (record 1, status: Field required)"),
        (None, "is not a file"),
    ],
)
def test_a_damaged_record_is_named_with_what_to_do_and_never_written_over(tmp_path, damage, says):
    state = tmp_path / "schedule" / "support.json"
    state.parent.mkdir()
    state.mkdir() if damage is None else state.write_bytes(damage)
    fix = "restore it, or move it aside: the next run then takes every batch in the watched folder as new"

    for call in (
        lambda: processed_batches(state),
        lambda: record_processed(state, ProcessedBatch(sha256="2" * 64, file="b.csv", status="promoted")),
    ):
        with pytest.raises(ConfigError) as err:
            call()
        assert str(err.value).startswith(f"{state}, the schedule's record of processed batches, {says}")
        assert fix in str(err.value)
    assert state.is_dir() if damage is None else state.read_bytes() == damage


def test_every_extension_validate_reads_is_a_batch_whatever_its_case(tmp_path):
    for name in ("EXPORT.CSV", "b.ndjson", "c.pq", "d.Parquet", "notes.txt"):
        (tmp_path / name).write_text(name)
    assert sorted(a.path.name for a in new_batches(tmp_path, [], 0)[0]) == [
        "EXPORT.CSV",
        "b.ndjson",
        "c.pq",
        "d.Parquet",
    ]


def test_only_one_run_per_name_holds_the_watch_lock(tmp_path):
    lock = tmp_path / "schedule" / "support.lock"
    with watch_lock(lock) as first:
        with watch_lock(lock) as second:
            assert (first, second) == (True, False)
    with watch_lock(lock) as again:
        assert again is True


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


def _event(seq: int, action: str, version: str, alias: str | None = None, minutes_ago: int = 30):
    from registry.audit.events import AuditEvent

    return AuditEvent(
        action=action,
        name="support",
        version=version,
        actor="a",
        role="trainer",
        reason="r",
        alias=alias,
        seq=seq,
        time=(NOW - timedelta(minutes=minutes_ago)).isoformat(),
    )


@pytest.mark.parametrize(
    ("events", "gate", "staging_on", "owed"),
    [
        ([_event(1, "register", "v1"), _event(2, "register", "v2")], "same", True, True),
        ([_event(1, "register", "v2")], "same", False, False),  # the policy does not promote staging
        ([_event(1, "register", "v2")], "failed", True, False),
        ([_event(1, "register", "v2")], "other policy", True, False),
        ([_event(1, "register", "v2")], None, True, False),
        ([_event(1, "register", "v2"), _event(2, "register", "v3")], "same", True, False),  # a newer version since
        ([_event(1, "register", "v2"), _event(2, "promote", "v2", "staging")], "same", True, False),
        ([_event(1, "register", "v2"), _event(2, "rollback", "v1", "production")], "same", True, False),
        ([_event(1, "register", "v2"), _event(2, "archive", "v1")], "same", True, False),
        ([], "same", True, False),
        ([_event(1, "register", "v2", minutes_ago=3)], "same", True, False),  # its run may still be promoting
    ],
)
def test_staging_is_owed_only_while_nothing_happened_since_and_under_the_gates_policy(events, gate, staging_on, owed):
    from pipelines.policy import load_policy
    from pipelines.usecases.watch import owed_staging
    from registry.gate_summary import GateSummary

    policy = load_policy()
    policy = policy.model_copy(
        update={"promotion": policy.promotion.model_copy(update={"auto_promote_staging": staging_on})}
    )
    summaries = {
        "same": GateSummary(True, policy.sha256, policy.version),
        "failed": GateSummary(False, policy.sha256, policy.version, ["quality.macro_f1 = 0.1"]),
        "other policy": GateSummary(True, "f" * 64, "older"),
        None: None,
    }
    assert owed_staging(events, "v2", summaries[gate], policy, NOW) is owed


def test_a_record_that_is_a_link_to_nothing_is_refused_not_read_as_none(tmp_path):
    state = tmp_path / "schedule" / "support.json"
    state.parent.mkdir()
    state.symlink_to(tmp_path / "unmounted" / "support.json")
    with pytest.raises(ConfigError, match="is not a file \\(or a link to none\\)"):
        record_processed(state, ProcessedBatch(sha256="2" * 64, file="b.csv", status="promoted"))
    assert state.is_symlink()
