"""The templates the console's pages and the one-file report share, and the charts of a version's evidence."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from pipelines.console import charts, i18n
from pipelines.console.evidence import Evidence
from registry.explanations import CSS as EXPLANATIONS_CSS
from registry.governance import production_moves_to_review

HERE = Path(__file__).parent


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def evidence_charts(evidence: Evidence, lang: str) -> dict[str, Markup | None]:
    """The version's charts as inline SVG (escaped inside; safe to place in a page as they are)."""
    t = lambda key: i18n.word(lang, key)  # noqa: E731
    labels = [str(x) for x in (evidence.quality or {}).get("labels") or evidence.inputs.manifest.labels]
    intervals = [
        (f"{t('vs_production')} ({i.label})", i.point, i.low, i.high) for i in [evidence.against_production] if i
    ] + [(f"{t('baselines')}: {b.label}", b.point, b.low, b.high) for b in evidence.baselines]
    return {
        "per_class": Markup(charts.bar_chart(evidence.per_class_f1, title=t("per_class_f1")))
        if evidence.per_class_f1
        else None,
        "confusion": Markup(charts.confusion_matrix(labels, evidence.confusion, title=t("confusion")))
        if evidence.confusion
        else None,
        "intervals": Markup(charts.interval_chart(intervals, title=t("interval"))) if intervals else None,
    }


def render_report(evidence: Evidence, *, lang: str = i18n.DEFAULT_LANGUAGE, zone: str | None = None) -> str:
    """The version's evidence and audit trail as one HTML file: styles inline, charts as SVG, no script,
    nothing fetched from anywhere, so it opens offline and can be archived or mailed as it is."""
    where = i18n.zone(zone)
    m = evidence.inputs.manifest
    return (
        environment()
        .get_template("report.html")
        .render(
            lang=lang,
            t=lambda key, **v: i18n.word(lang, key, **v),
            when=lambda s: i18n.local_time(s, where),
            zone=where.key,
            e=evidence,
            m=m,
            svg=evidence_charts(evidence, lang),
            drift_link=False,
            css=Markup((HERE / "static" / "console.css").read_text(encoding="utf-8") + EXPLANATIONS_CSS),
            generated=i18n.local_time(dt.datetime.now(dt.timezone.utc).isoformat(), where),
            to_review=production_moves_to_review([e for e in evidence.inputs.trail if e.version == m.version]),
        )
    )
