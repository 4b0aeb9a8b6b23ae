"""A rejected file that git tracks, or a file that is no batch at all, stays where it is: moving it
into quarantine would delete it from the checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipelines.batches.read import UnsupportedFormatError
from pipelines.batches.route import validate_and_route
from pipelines.policy import load_policy
from tests.conftest import REPO


@pytest.fixture
def checkout(tmp_path) -> Path:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "data" / "sample").mkdir(parents=True)
    return tmp_path


def _commit(checkout: Path, rel: str, content: bytes) -> Path:
    path = checkout / rel
    path.write_bytes(content)
    subprocess.run(["git", "add", rel], cwd=checkout, check=True)
    return path


def _git_status(checkout: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain"], cwd=checkout, capture_output=True, text=True).stdout


def test_a_rejected_batch_git_tracks_is_copied_to_quarantine_and_left_in_place(checkout):
    content = (REPO / "data" / "sample" / "train.csv").read_bytes()
    (checkout / "data" / "incoming").mkdir()
    batch = _commit(checkout, "data/incoming/train.csv", content)
    labels = checkout / "three.txt"
    labels.write_text("card_lost\nrefund_request\nlogin_problem\n")
    report = validate_and_route(batch, load_policy(), data_dir=checkout / "data", labels_file=labels, track=False)
    assert not report.accepted and Path(report.quarantined_to).read_bytes() == content
    assert batch.read_bytes() == content
    assert "D " not in _git_status(checkout)
    assert any("stays where it was" in note and "git tracks" in note for note in report.notes)
    assert Path(report.report_json).parent.parent == checkout / "data" / "quarantine"


def test_an_unsupported_extension_is_refused_by_name_and_left_in_place(checkout):
    params = _commit(checkout, "params.yaml", b"train:\n  epochs: 1\n")
    with pytest.raises(UnsupportedFormatError, match=r"params.yaml has unsupported extension '.yaml'.*left in place"):
        validate_and_route(params, load_policy(), data_dir=checkout / "data", track=False)
    assert params.read_bytes() == b"train:\n  epochs: 1\n"
    assert not (checkout / "data" / "quarantine").exists()
