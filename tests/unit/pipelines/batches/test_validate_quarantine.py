"""Quarantine moves: atomic rename on one filesystem, copy + fsync + verify across filesystems, and
never a lost or half-moved batch."""

from __future__ import annotations

import errno
import os
from datetime import datetime, timezone

import pytest

from pipelines.batches import quarantine
from pipelines.batches.folders import fresh_folder
from pipelines.batches.quarantine import move_into
from registry.errors import AlreadyExistsError, IntegrityError

NOW = datetime(2026, 11, 27, 23, 0, 0, tzinfo=timezone.utc)


def _batch(tmp_path, content: bytes = b"text,label\nhello there,a\n"):
    batch = tmp_path / "data" / "incoming" / "b.csv"
    batch.parent.mkdir(parents=True, exist_ok=True)
    batch.write_bytes(content)
    return batch


def _cross_device(monkeypatch):
    def rename(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(quarantine.os, "rename", rename)


def test_folders_are_named_by_utc_time_and_batch_and_never_reused(tmp_path):
    batch = _batch(tmp_path)
    first = fresh_folder(tmp_path / "q", batch, now=NOW)
    second = fresh_folder(tmp_path / "q", batch, now=NOW)
    assert first.name == "20261127T230000Z-b.csv"
    assert second.name == "20261127T230000Z-b.csv-1"


def test_a_batch_on_the_same_filesystem_is_renamed(tmp_path):
    batch = _batch(tmp_path)
    inode = batch.stat().st_ino
    moved = move_into(batch, fresh_folder(tmp_path / "q", batch, now=NOW))
    assert not batch.exists()
    assert moved.stat().st_ino == inode
    assert moved.read_bytes() == b"text,label\nhello there,a\n"


def test_across_filesystems_the_batch_is_copied_verified_then_removed(tmp_path, monkeypatch):
    content = os.urandom(3 << 20)
    batch = _batch(tmp_path, content)
    folder = fresh_folder(tmp_path / "q", batch, now=NOW)
    _cross_device(monkeypatch)
    moved = move_into(batch, folder)
    assert not batch.exists()
    assert moved.read_bytes() == content
    assert sorted(p.name for p in folder.iterdir()) == ["b.csv"]


def test_a_copy_that_does_not_verify_keeps_the_original_and_leaves_no_partial(tmp_path, monkeypatch):
    batch = _batch(tmp_path)
    folder = fresh_folder(tmp_path / "q", batch, now=NOW)
    _cross_device(monkeypatch)
    digests = iter(["aaaa", "bbbb"])
    monkeypatch.setattr(quarantine, "sha256_file", lambda path: next(digests))
    with pytest.raises(IntegrityError, match="does not match the original; the original is kept"):
        move_into(batch, folder)
    assert batch.read_bytes() == b"text,label\nhello there,a\n"
    assert list(folder.iterdir()) == []


def test_an_occupied_target_moves_nothing(tmp_path):
    batch = _batch(tmp_path)
    folder = fresh_folder(tmp_path / "q", batch, now=NOW)
    (folder / "b.csv").write_bytes(b"older batch")
    with pytest.raises(AlreadyExistsError, match="nothing was moved"):
        move_into(batch, folder)
    assert batch.read_bytes() == b"text,label\nhello there,a\n"
    assert (folder / "b.csv").read_bytes() == b"older batch"


def test_a_run_stopped_as_it_moves_a_rejected_batch_has_already_written_why(tmp_path, monkeypatch):
    from pipelines.batches.route import validate_and_route
    from pipelines.policy import load_policy
    from pipelines.records import ValidationReport

    def killed(batch, folder):  # as far as a kill -9 at this point lets anything go
        raise SystemExit(137)

    monkeypatch.setattr(quarantine, "move_into", killed)
    batch = _batch(tmp_path)
    with pytest.raises(SystemExit):
        validate_and_route(batch, load_policy(), data_dir=tmp_path / "data", track=False)
    (folder,) = (tmp_path / "data" / "quarantine").iterdir()
    report = ValidationReport.read_json(folder / "validation.json")
    assert not report.accepted and "at least two classes" in (folder / "validation.md").read_text(encoding="utf-8")
    assert batch.read_bytes() == b"text,label\nhello there,a\n"  # still where it was, for the next run


@pytest.mark.parametrize("link_in", ["Downloads", "data/incoming"])
def test_a_rejected_batch_reached_through_a_symbolic_link_is_copied_and_the_link_and_file_stay(tmp_path, link_in):
    """A link elsewhere to a file in incoming, or a link in incoming to a file elsewhere: moving would
    rename the user's link (or leave a dangling one), so the batch's content is copied."""
    from pipelines.batches.route import validate_and_route
    from pipelines.policy import load_policy
    from pipelines.records import ValidationReport

    target = _batch(tmp_path) if link_in == "Downloads" else tmp_path / "elsewhere" / "b.csv"
    if link_in != "Downloads":
        target.parent.mkdir()
        target.write_bytes(b"text,label\nhello there,a\n")
    link = tmp_path / link_in / "link.csv"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target)
    report = validate_and_route(link, load_policy(), data_dir=tmp_path / "data", track=False)
    assert not report.accepted
    assert link.is_symlink() and link.resolve() == target and target.read_bytes() == b"text,label\nhello there,a\n"
    (folder,) = (tmp_path / "data" / "quarantine").iterdir()
    assert report.quarantined_to == str(folder / "link.csv")
    assert not (folder / "link.csv").is_symlink() and (folder / "link.csv").read_bytes() == target.read_bytes()
    assert f"{link} stays where it was" in report.notes[-1]
    assert ValidationReport.read_json(folder / "validation.json").quarantined_to == str(folder / "link.csv")
