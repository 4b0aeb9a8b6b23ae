"""A batch the filesystem will not let go (an immutable folder, made with `chattr +i`) stays where it is: a rejected
one with its report quarantined and an error that names both, a cross-filesystem copy taken back."""

from __future__ import annotations

import subprocess

import pytest

from pipelines.batches import quarantine
from pipelines.batches.folders import fresh_folder
from pipelines.batches.quarantine import QuarantineError, move_into
from tests.unit.pipelines.batches.test_validate_quarantine import NOW, _batch, _cross_device


@pytest.fixture
def immutable(tmp_path):
    """Make a folder immutable (`chattr +i`) for the test, and mutable again after it."""
    made = []

    def make(folder):
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
            pytest.skip("chattr +i is not available here")
        made.append(folder)

    yield make
    for folder in made:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_a_rejected_batch_in_an_immutable_folder_stays_with_its_report_and_the_error_names_both(tmp_path, immutable):
    from pipelines.batches.route import validate_and_route
    from pipelines.policy import load_policy
    from pipelines.records import ValidationReport

    batch = _batch(tmp_path)
    immutable(batch.parent)
    with pytest.raises(QuarantineError) as raised:
        validate_and_route(batch, load_policy(), data_dir=tmp_path / "data", track=False)
    message = str(raised.value)
    assert f"batch {batch} was REJECTED (" in message and "at least two classes" in message
    assert "does not let b.csv be removed (a read-only or immutable folder)" in message
    assert batch.read_bytes() == b"text,label\nhello there,a\n"
    (folder,) = (tmp_path / "data" / "quarantine").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["validation.json", "validation.md"]
    assert f"its report is {folder / 'validation.md'}" in message
    report = ValidationReport.read_json(folder / "validation.json")
    assert not report.accepted and report.quarantined_to is None and "left in place" in report.notes[-1]


def test_a_cross_filesystem_copy_whose_original_cannot_be_removed_is_taken_back(tmp_path, monkeypatch, immutable):
    batch = _batch(tmp_path)
    folder = fresh_folder(tmp_path / "q", batch, now=NOW)
    immutable(batch.parent)
    _cross_device(monkeypatch)
    monkeypatch.setattr(quarantine.os, "access", lambda path, mode: True)  # as a check that cannot see the flag
    with pytest.raises(QuarantineError, match="cannot remove .*b.csv after copying it .*; the copy was removed"):
        move_into(batch, folder)
    assert batch.read_bytes() == b"text,label\nhello there,a\n"
    assert list(folder.iterdir()) == []
