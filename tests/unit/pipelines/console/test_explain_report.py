"""Explanations in the audit report: Japanese text highlighted span by span, every piece escaped, bad files said so;
which holdout rows evaluation explains, and a failure that is reported rather than raised."""

from __future__ import annotations

import json

import pytest

from pipelines.console.evidence import evidence_of
from pipelines.console.render import render_report
from pipelines.evaluation.holdout_explanations import ExplainBudget, explain_holdout, pick_rows
from pipelines.records import LabeledBatch
from registry.adapter_folder import inspect_adapter_folder
from registry.explanations import (
    EXPLANATIONS_FILE,
    ExplainedRow,
    Explanation,
    ExplanationsReport,
    Faithfulness,
    Span,
    highlighted,
    read_report,
)
from registry.fingerprint import BaseModelFingerprint
from registry.manifest import build_manifest
from registry.report import ReportInputs
from tests.registry_helpers import make_adapter_folder

BASE = BaseModelFingerprint("sentence-transformers/all-MiniLM-L6-v2", "a" * 64, "b" * 64)
TEXT = "カードを<b>落とし</b>ました"


def _explanation(text: str = TEXT, label: str = "card_lost") -> Explanation:
    cuts = [(0, 3), (3, 4), (4, 7), (7, 10), (10, 14), (14, len(text))]
    values = [0.30, 0.01, -0.05, 0.20, 0.0, -0.10]
    return Explanation(
        text=text,
        label=label,
        probability=0.91,
        method="integrated_gradients",
        baseline_probability=0.55,
        delta=0.001,
        steps=32,
        truncated=False,
        spans=[Span(text=text[b:e], start=b, end=e, attribution=v) for (b, e), v in zip(cuts, values)],
        faithfulness=Faithfulness(top_k=2, comprehensiveness=0.6, sufficiency=0.1, random_comprehensiveness=0.05),
    )


def _report(**update) -> ExplanationsReport:
    row = ExplainedRow(id="jt<9>", true_label="refund<x>", correct=False, explanation=_explanation())
    return ExplanationsReport(
        adapter="tickets:candidate", max_rows=12, steps=32, wrong_total=3, right_total=29, rows=[row]
    ).model_copy(update=update)


def _html(tmp_path, explanations) -> str:
    folder = inspect_adapter_folder(make_adapter_folder(tmp_path / "a", BASE), BASE)
    manifest = build_manifest(
        folder,
        "tickets",
        "v1",
        created_by="alice",
        created_role="trainer",
        created_at="2026-01-01T00:00:00+00:00",
        reason="first",
    )
    inputs = ReportInputs(
        manifest=manifest,
        aliases=[],
        archived=False,
        trail=[],
        evidence={},
        generated_at="2026-01-02T00:00:00+00:00",
        explanations=explanations,
    )
    return render_report(evidence_of(inputs, []), lang="en")


def test_the_report_highlights_japanese_text_span_by_span_and_escapes_it(tmp_path):
    html = _html(tmp_path, _report())
    assert "<h2>Explanations (which words made the adapter decide)</h2>" in html
    assert "<b>落" not in html and "<x>" not in html and "&lt;/b&gt;" in html
    assert '<span style="background:rgba(22,160,60,0.75)" title="+0.3000">カード</span>' in html  # the strongest span
    assert '<span style="background:rgba(210,40,40,0.12)" title="-0.0500">&lt;b&gt;</span>' in html  # against the label
    assert "wrong: row <code>jt&lt;9&gt;</code>, labeled refund&lt;x&gt;" in html
    assert "predicted <b>card_lost</b> (0.910) by integrated gradients; convergence error +0.001 over 32 steps" in html
    assert "comprehensiveness +0.600 (random spans +0.050), sufficiency +0.100" in html
    assert "1 of 3 wrongly predicted holdout rows and 0 of 29 right ones" in html


def test_the_highlighted_text_is_the_whole_text_in_order():
    import re
    from html import unescape

    assert unescape(re.sub(r"<[^>]+>", "", highlighted(_explanation()))) == TEXT


@pytest.mark.parametrize(
    "explanations, shown",
    [
        (None, "No explanations were stored with this version"),
        (
            "reports/explanations.json cannot be shown: not JSON",
            "<p class=fail>reports/explanations.json cannot be shown",
        ),
        (
            _report(rows=[], error="RuntimeError: <boom>"),
            "<p class=fail>No explanations: RuntimeError: &lt;boom&gt;</p>",
        ),
        (_report(rows=[]), "No holdout rows were explained (the budget is 0 rows)."),
    ],
)
def test_a_version_without_readable_explanations_says_why(tmp_path, explanations, shown):
    assert shown in _html(tmp_path, explanations)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"[]", "not an explanations file of format 1"),
        (json.dumps({"format": 1, "adapter": "a"}).encode(), "problem"),
        (b"{", "Expecting property name"),
    ],
)
def test_a_stored_file_that_is_not_an_explanations_file_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        read_report(data)


def test_a_stored_report_reads_back_whole():
    report = _report()
    assert read_report(report.model_dump_json().encode("utf-8")) == report
    assert EXPLANATIONS_FILE == "reports/explanations.json"


@pytest.mark.parametrize(
    "correct, rows, wrong, n_right",
    [
        ([False, True, False, True, True, False], 3, [0, 2], 1),  # two wrong, then one right
        ([False, False, False, False, True, True], 6, [0, 1, 2, 3], 2),
        ([True] * 5, 2, [], 2),  # no wrong rows: every slot goes to right ones
        ([False] * 5, 3, [0, 1, 2], 0),  # no right rows: every slot goes to wrong ones
        ([False, True], 0, [], 0),
        ([False, True], 1, [0], 0),
    ],
)
def test_wrong_rows_come_first_and_a_third_of_the_budget_goes_to_right_ones(correct, rows, wrong, n_right):
    got = pick_rows(correct, rows)
    assert got[: len(wrong)] == wrong
    assert len(got) == len(wrong) + n_right and all(correct[i] for i in got[len(wrong) :])
    assert pick_rows(correct, rows) == got  # seeded: the same rows every time


def test_an_explanation_that_fails_is_reported_in_the_file_not_raised(monkeypatch):
    import serving.explain

    def broken(*_args, **_kwargs):
        raise RuntimeError("the model is gone")

    monkeypatch.setattr(serving.explain, "explain_many", broken)
    holdout = LabeledBatch(source="h.csv", texts=["x", "y"], labels=["a", "b"], ids=["1", "2"])
    report = explain_holdout(object(), holdout, ["a", "a"], ExplainBudget(rows=2, steps=2), "tickets:candidate")
    assert report.rows == [] and (report.wrong_total, report.right_total) == (1, 1)
    assert report.error == "RuntimeError: the model is gone"


def test_a_budget_out_of_range_is_refused():
    with pytest.raises(ValueError, match="0 or more"):
        ExplainBudget(rows=-1)
    with pytest.raises(ValueError, match="at least 2"):
        ExplainBudget(steps=1)


def test_evaluate_removes_an_earlier_runs_explanations_before_anything_else(tmp_path):
    from pipelines.evaluation.checks.suite import evaluate
    from pipelines.policy import DEFAULT_POLICY, load_policy
    from registry.errors import NotFoundError

    stale = tmp_path / "out" / EXPLANATIONS_FILE
    stale.parent.mkdir(parents=True)
    stale.write_text(_report().model_dump_json())
    holdout = LabeledBatch(source="h.csv", texts=["x"], labels=["a"], ids=["1"])
    with pytest.raises(NotFoundError):  # the base model is missing: the run stops after clearing the old evidence
        evaluate(
            tmp_path / "adapter",
            holdout,
            load_policy(DEFAULT_POLICY),
            base_model_dir=tmp_path / "missing",
            base_model_id="missing",
            cache_dir=tmp_path,
            out_dir=tmp_path / "out",
        )
    assert not stale.exists()
