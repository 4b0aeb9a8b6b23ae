"""Explanations of predictions as stored records, and their rendering as highlighted HTML.

The records are written by ``serving.explain`` (attributions need torch) and read here without it:
the registry renders the ``reports/explanations.json`` that evaluation stored with a candidate, and
the predictor's ``POST /explain`` answers with the same :class:`Explanation`.
"""

from __future__ import annotations

import json
from html import escape
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

EXPLANATIONS_FILE = "reports/explanations.json"
EXPLANATIONS_FORMAT = 1
Method = Literal["integrated_gradients", "occlusion"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(Record):
    """A word (or, in Japanese, a token's characters) of the text and what it added to the predicted probability."""

    text: str
    start: int = Field(ge=0, description="character offset in the explained text")
    end: int = Field(ge=0)
    attribution: float = Field(description="share of the predicted label's probability; negative: spoke against it")


class Faithfulness(Record):
    """ERASER's measures (DeYoung et al. 2020) of how far the top spans really drive the prediction."""

    top_k: int = Field(description="spans counted as the explanation: the most positive ones")
    comprehensiveness: float = Field(description="probability lost when the top spans are removed (higher: faithful)")
    sufficiency: float = Field(description="probability lost when only the top spans are kept (lower: faithful)")
    random_comprehensiveness: float = Field(
        description="probability lost when as many random spans are removed, for comparison"
    )


class Explanation(Record):
    """Why one text got its label: per-span attributions to the predicted label's probability."""

    text: str
    label: str
    probability: float
    method: Method
    method_note: str = Field("", description="why occlusion was used instead of integrated gradients, if it was")
    baseline_probability: float | None = Field(
        None, description="integrated gradients: the probability with every word replaced by padding"
    )
    delta: float | None = Field(
        None,
        description="integrated gradients' convergence error: sum of attributions minus "
        "(probability - baseline_probability); small next to the attributions means trustworthy",
    )
    steps: int | None = Field(None, description="integrated gradients' integration steps")
    truncated: bool = Field(description="the text was longer than the model reads: later spans got no attribution")
    spans: list[Span]
    faithfulness: Faithfulness


class ExplainedRow(Record):
    id: str
    true_label: str
    correct: bool
    explanation: Explanation


class ExplanationsReport(Record):
    """``reports/explanations.json``: holdout rows the candidate got wrong, and a sample it got right."""

    format: int = EXPLANATIONS_FORMAT
    adapter: str
    max_rows: int = Field(description="the budget: most rows explained")
    steps: int
    wrong_total: int = Field(description="holdout rows the candidate got wrong (explained: the first of them)")
    right_total: int
    rows: list[ExplainedRow] = Field(default_factory=list)
    error: str = Field("", description="why no explanations could be computed, if none could")


def read_report(data: bytes) -> ExplanationsReport:
    """Parse a stored explanations file.

    Raises:
        ValueError: not JSON, or not an explanations file of a format this Tailor reads.
    """
    try:
        return ExplanationsReport.model_validate(json.loads(data))
    except ValidationError as err:
        raise ValueError(
            f"not an explanations file of format {EXPLANATIONS_FORMAT}: "
            f"{err.error_count()} problem(s), first: {err.errors()[0]['msg']}"
        ) from None


CSS = """.explained{line-height:2;font-size:1rem;white-space:pre-wrap}.explained span{border-radius:.2rem;padding:0 .05rem}
.explain-meta{font-size:.85rem;color:#444}"""


def _shade(attribution: float, scale: float) -> str:
    """Green for spans that pushed towards the label, red for those against, stronger the larger."""
    strength = min(1.0, abs(attribution) / scale) if scale > 0 else 0.0
    colour = "22,160,60" if attribution >= 0 else "210,40,40"
    return f"background:rgba({colour},{strength * 0.75:.2f})"


def highlighted(explanation: Explanation) -> str:
    """The explained text as HTML, each span shaded by its attribution (its value in the tooltip), all escaped."""
    text, spans = explanation.text, sorted(explanation.spans, key=lambda s: s.start)
    scale = max((abs(s.attribution) for s in spans), default=0.0)
    out, at = [], 0
    for span in spans:
        out.append(escape(text[at : span.start]))
        out.append(
            f'<span style="{_shade(span.attribution, scale)}" title="{span.attribution:+.4f}">'
            f"{escape(text[span.start : span.end])}</span>"
        )
        at = span.end
    out.append(escape(text[at:]))
    return f"<div class=explained>{''.join(out)}</div>"


def _meta(e: Explanation) -> str:
    f = e.faithfulness
    method = "integrated gradients" if e.method == "integrated_gradients" else "occlusion"
    parts = [f"predicted <b>{escape(e.label)}</b> ({e.probability:.3f}) by {method}"]
    if e.delta is not None:
        parts.append(f"convergence error {e.delta:+.2g} over {e.steps} steps")
    if e.method_note:
        parts.append(escape(e.method_note))
    parts.append(
        f"top {f.top_k} span(s): comprehensiveness {f.comprehensiveness:+.3f} "
        f"(random spans {f.random_comprehensiveness:+.3f}), sufficiency {f.sufficiency:+.3f}"
    )
    if e.truncated:
        parts.append("text truncated to the model's length")
    return f"<p class=explain-meta>{'; '.join(parts)}</p>"


def render_report(report: ExplanationsReport) -> str:
    """The explanations section of the audit report (HTML)."""
    if report.error:
        return f"<p class=fail>No explanations: {escape(report.error)}</p>"
    if not report.rows:
        return "<p class=muted>No holdout rows were explained (the budget is 0 rows).</p>"
    head = (
        f"<p class=muted>{sum(not r.correct for r in report.rows)} of {report.wrong_total} wrongly predicted "
        f"holdout rows and {sum(r.correct for r in report.rows)} of {report.right_total} right ones, "
        f"at most {report.max_rows} rows, {report.steps} integration steps. Green words pushed towards the "
        "predicted label, red ones against it. Comprehensiveness well above the random spans' means the "
        "highlighted words really drive the prediction.</p>"
    )
    rows = "".join(
        f"<h3>{'right' if r.correct else 'wrong'}: row <code>{escape(r.id)}</code>, labeled {escape(r.true_label)}</h3>"
        f"{highlighted(r.explanation)}{_meta(r.explanation)}"
        for r in report.rows
    )
    return head + rows
