"""write_atomic: a reader sees the old file or the new one, and a failed write leaves nothing behind."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from registry.files import write_atomic


def test_it_replaces_the_whole_file_and_leaves_no_aside_file(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old, and longer than what replaces it")
    write_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert os.listdir(tmp_path) == ["state.json"]


def test_a_write_that_fails_leaves_the_target_untouched_and_no_aside_file(tmp_path):
    target = tmp_path / "report.html"
    target.mkdir()  # a folder where the file should go: the rename over it fails
    (target / "keep.txt").write_text("kept")
    with pytest.raises(OSError):
        write_atomic(target, "<html></html>")
    assert (target / "keep.txt").read_text(encoding="utf-8") == "kept"
    assert os.listdir(tmp_path) == ["report.html"]


def test_a_full_disk_names_the_file_and_leaves_nothing_behind(tmp_path, monkeypatch):
    import errno

    from registry import files

    class Full:
        def __init__(self, fd, mode):
            os.close(fd)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fdopen", Full)
    with pytest.raises(OSError) as err:
        write_atomic(tmp_path / "gate_decision.json", "{}")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(tmp_path / "gate_decision.json")
    assert os.listdir(tmp_path) == []


def test_private_files_are_readable_by_their_owner_only(tmp_path):
    target = write_atomic(tmp_path / "identities.json", b"{}", private=True)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_concurrent_writers_each_rename_a_complete_file(tmp_path):
    target = tmp_path / "cache.json"
    payloads = [str(i) * 200_000 for i in range(8)]
    threads = [threading.Thread(target=write_atomic, args=(target, p)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_text(encoding="utf-8") in payloads
    assert os.listdir(tmp_path) == ["cache.json"]


def test_a_folder_that_does_not_exist_is_named_by_the_target_not_the_aside_file(tmp_path):
    target = tmp_path / "missing" / "report.html"
    with pytest.raises(FileNotFoundError) as err:
        write_atomic(target, "x")
    assert err.value.filename == str(target)
