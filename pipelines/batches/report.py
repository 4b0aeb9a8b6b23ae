"""The validation report as files: ``validation.json`` (the `ValidationReport` record), a Markdown
page a reviewer reads (``validation.md``) and the noise audit's review CSV (``noise_review.csv``).
"""

from __future__ import annotations

from pathlib import Path

from pipelines.batches.inert_text import markdown_text as md
from pipelines.batches.noise_audit import SuspectedMislabel, write_review
from pipelines.records import ValidationReport

REPORT_JSON = "validation.json"
REPORT_MARKDOWN = "validation.md"
REVIEW_CSV = "noise_review.csv"


def write_reports(report: ValidationReport, suspects: list[SuspectedMislabel], folder: Path) -> ValidationReport:
    """Write ``validation.json``, ``validation.md`` and (after a noise audit) ``noise_review.csv`` into ``folder``."""
    # Absolute paths: the report is read from other working directories (flows, the registry upload).
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    update: dict = {"report_json": str(folder / REPORT_JSON), "report_markdown": str(folder / REPORT_MARKDOWN)}
    if report.noise is not None:
        review = write_review(suspects, folder / REVIEW_CSV)
        update["review_file"] = str(review)
        update["noise"] = report.noise.model_copy(update={"review_file": str(review)})
    report = report.model_copy(update=update)
    report.write_json(folder / REPORT_JSON)
    (folder / REPORT_MARKDOWN).write_text(render_markdown(report, suspects), encoding="utf-8")
    return report


def locations(report: ValidationReport) -> list[tuple[str, str]]:
    """Where the batch went and what it is now: (what, where) pairs for the page and the CLI."""
    pairs = [
        ("quarantined to", report.quarantined_to),
        ("data version (DVC md5)", report.data_version),
        ("DVC file, commit it with git", report.tracked_file),
    ]
    return [(what, where) for what, where in pairs if where]


def render_markdown(report: ValidationReport, suspects: list[SuspectedMislabel]) -> str:
    """A page a reviewer reads: verdict, every failed expectation with count and examples, the noise audit.

    Everything that comes from the batch (its name, labels, ids, texts, examples) goes through
    `markdown_text`: it shows as written and never becomes HTML, a link or a table cell.
    """
    verdict = "ACCEPTED" if report.accepted else "REJECTED"
    lines = [
        f"# Validation of {md(Path(report.batch).name)}: {verdict}",
        "",
        f"- batch: {md(report.batch)} ({report.rows} rows)",
        f"- checked at: {report.created_at:%Y-%m-%d %H:%M:%S} UTC; policy sha256 `{(report.policy_sha256 or '-')[:16]}`",
    ]
    lines += [f"- {what}: {md(where)}" for what, where in locations(report)]
    if report.labels:
        lines.append(f"- allowed labels: {', '.join(md(x) for x in report.labels)}")
    if (c := report.coverage) is not None:
        lines.append(
            f"- base model coverage: {c.unknown_token_share:.1%} unknown tokens, {c.chars_per_token:.2f} "
            f"characters per token over {c.texts} texts ({md(c.base_model)})"
        )
    lines += ["", f"## Failed expectations ({len(report.failures)} of {len(report.checked)})", ""]
    if not report.failures:
        lines += ["None.", ""]
    for failure in report.failures:
        lines += [f"### {failure.name} — {failure.count} row(s)", "", f"*Why:* {failure.why}", ""]
        if failure.expectation:
            lines += [f"*Expectation:* `{failure.expectation}`", ""]
        lines += [f"- {md(example)}" for example in failure.examples] + [""]
    passed = [name for name in report.checked if name not in {f.name for f in report.failures}]
    if passed:
        lines += ["## Passed", "", *[f"- {name}" for name in passed], ""]
    if report.noise is not None:
        noise = report.noise
        rate = "n/a" if noise.estimated_rate is None else f"{noise.estimated_rate:.3f}"
        lines += [
            "## Label-noise audit (confident learning)",
            "",
            f"- estimated noise rate: {rate} (limit {noise.max_rate}); {noise.audited_rows} rows, {noise.folds} folds",
            f"- suspected mislabels: {noise.flagged} (review file: {md(noise.review_file or '-')})",
            *[f"- note: {md(note)}" for note in noise.notes],
            "",
        ]
        if suspects:
            lines += ["| id | given | suggested | confidence | text |", "|---|---|---|---|---|"]
            lines += [
                f"| {md(s.id)} | {md(s.given_label)} | {md(s.suggested_label)} | {s.confidence:.2f} | {md(s.text[:100])} |"
                for s in suspects[:20]
            ]
            lines.append("")
    if report.class_counts:
        lines += [
            "## Rows per label",
            "",
            *[f"- {md(k) or '(empty)'}: {v}" for k, v in report.class_counts.items()],
            "",
        ]
    if report.notes:
        lines += ["## Notes", "", *[f"- {md(note)}" for note in report.notes], ""]
    return "\n".join(lines)
