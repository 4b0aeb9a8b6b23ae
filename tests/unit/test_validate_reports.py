"""Where an accepted batch's reports go, and that a folder given again holds only this run's."""

from __future__ import annotations

from pathlib import Path

from pipelines.policy import load_policy
from pipelines.validate import validate_and_route

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


def test_a_report_dir_given_again_loses_the_review_of_an_audit_this_run_skipped(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "noise_review.csv").write_text("row,label,suggested\n3,a,b\n")  # from a run with the audit on
    batch = tmp_path / "batch.csv"
    batch.write_bytes((SAMPLE / "train.csv").read_bytes())

    report = validate_and_route(batch, load_policy(), data_dir=tmp_path / "data", labels_file=SAMPLE / "labels.txt",
                                report_dir=reports, track=False)  # fmt: skip

    assert report.accepted and report.noise is None
    assert sorted(p.name for p in reports.iterdir()) == ["validation.json", "validation.md"]


def test_a_batch_named_like_the_review_in_its_own_report_dir_is_never_deleted(tmp_path):
    batch = tmp_path / "noise_review.csv"
    batch.write_bytes((SAMPLE / "train.csv").read_bytes())
    validate_and_route(batch, load_policy(), data_dir=tmp_path / "data", labels_file=SAMPLE / "labels.txt",
                       report_dir=tmp_path, track=False)  # fmt: skip
    assert batch.read_bytes() == (SAMPLE / "train.csv").read_bytes()
