"""The audit report of one version: a self-contained HTML model card with its evidence and audit trail.

One file, inline CSS, no scripts and no links to anything outside it: it opens offline and can
be archived or mailed as it is. Small JSON evidence files are embedded; every file is listed
with its size and sha256.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from html import escape
from typing import Any

from registry.audit.events import AuditEvent
from registry.governance import production_moves_to_review
from registry.explanations import (
    CSS as EXPLANATIONS_CSS,
    EXPLANATIONS_FILE,
    ExplanationsReport,
    read_report,
    render_report,
)
from registry.manifest import Manifest
from registry.reading import latest_gate
from registry.registry import Registry

EVIDENCE_MAX_BYTES = 64 * 1024
EXPLANATIONS_MAX_BYTES = 4 * 2**20  # a few hundred explained rows; evaluation's budget keeps it far smaller

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:64rem;color:#1b1b1b;
line-height:1.4;padding:0 1rem}h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}th,td{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;
vertical-align:top;font-size:.9rem}th{background:#f4f4f4}code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:.82rem}pre{background:#f7f7f7;padding:.6rem;overflow:auto;max-height:24rem}.pass{color:#0a6b2d;font-weight:600}
.fail{color:#a11;font-weight:600}.muted{color:#666}details{margin:.4rem 0}summary{cursor:pointer;font-weight:600}
"""


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows, gathered (and hash-checked) from the registry."""

    manifest: Manifest
    aliases: list[str]
    archived: bool
    trail: list[AuditEvent]
    evidence: dict[str, Any]  # small JSON files of the version, parsed
    generated_at: str
    # reports/explanations.json parsed, or why it cannot be shown; None when the version has none
    explanations: ExplanationsReport | str | None = None


def gather(registry: Registry, name: str, version: str) -> ReportInputs:
    """Read a version's manifest, its audit trail and its small JSON evidence (every file's hash checked).

    Raises:
        NotFoundError: no such version.
        IntegrityError: a stored file, the manifest or the audit chain does not match its hashes.
    """
    manifest = registry.manifest(name, version)
    state = registry.state(name)
    trail = [e for e in registry.events(name) if version in (e.version, e.alias_before)]
    wanted = {
        rel for rel, entry in manifest.files.items() if rel.endswith(".json") and entry.size <= EVIDENCE_MAX_BYTES
    }
    explanations: ExplanationsReport | str | None = None
    if (entry := manifest.files.get(EXPLANATIONS_FILE)) is not None:
        if entry.size <= EXPLANATIONS_MAX_BYTES:
            wanted.add(EXPLANATIONS_FILE)
        else:
            explanations = f"{EXPLANATIONS_FILE} is {entry.size:,} bytes, more than the {EXPLANATIONS_MAX_BYTES:,} shown"
    evidence = {}
    for rel, data in registry.verified_files(manifest, only=wanted):
        if rel == EXPLANATIONS_FILE:  # shown as highlighted text, not as JSON
            try:
                explanations = read_report(data)
            except ValueError as err:
                explanations = f"{EXPLANATIONS_FILE} cannot be shown: {err}"
            continue
        try:
            evidence[rel] = json.loads(data)
        except ValueError:
            evidence[rel] = data.decode("utf-8", errors="replace")
    return ReportInputs(
        manifest=manifest,
        aliases=sorted(a for a, v in state.aliases.items() if v == version),
        archived=version in state.archived,
        trail=trail,
        evidence=evidence,
        generated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        explanations=explanations,
    )


def _table(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _text(value: Any) -> str:
    return "<span class=muted>none</span>" if value in (None, "", [], {}) else escape(str(value))


def _gate(manifest: Manifest, trail: list[AuditEvent]) -> str:
    gate = latest_gate(trail, manifest)
    if gate is None:
        return "<p class=muted>No gate decision was recorded with this version.</p>"
    verdict = f"<span class={'pass' if gate.passed else 'fail'}>{gate.verdict.upper()}</span>"
    if gate is not manifest.gate:
        verdict += " (judged again after registering: see the audit trail)"
    failures = "".join(f"<li>{escape(f)}</li>" for f in gate.failures + gate.not_judged)
    return _table([("decision", verdict), ("policy sha256", f"<code>{_text(gate.policy_sha256)}</code>"),
                   ("policy version", _text(gate.policy_version))]) + (f"<ul>{failures}</ul>" if failures else "")  # fmt: skip


def _trail(events: list[AuditEvent]) -> str:
    head = "<tr><th>seq</th><th>time (UTC)</th><th>actor (role)</th><th>action</th><th>alias</th><th>reason</th><th>sha256</th></tr>"
    rows = "".join(
        f"<tr><td><code>{escape(e.key_name)}</code></td><td>{escape(e.time)}</td><td>{escape(e.actor)} ({escape(e.role)})</td>"
        f"<td>{escape(e.action)} {escape(e.version)}{' <span class=fail>OVERRIDE</span>' if e.override else ''}</td>"
        f"<td>{escape(f'{e.alias}: {e.alias_before or chr(8211)} → {e.alias_after}') if e.alias else ''}</td>"
        f"<td>{escape(e.reason)}</td><td><code>{escape(e.sha256[:16])}…</code></td></tr>"
        for e in events
    )
    return f"<table>{head}{rows}</table>"


def _review(events: list[AuditEvent]) -> str:
    """The version's production moves that four-eyes or the gate rule would have refused, for the reader."""
    found = production_moves_to_review(events)
    if not found:
        return ""
    items = "".join(f"<li>{escape(item)}</li>" for item in found)
    return f"<p class=fail>To review (the policy of the day may have allowed these):</p><ul>{items}</ul>"


def _explanations(explanations: ExplanationsReport | str | None) -> str:
    if explanations is None:
        return "<p class=muted>No explanations were stored with this version (evaluated before they existed, " \
               "or with explain_rows = 0).</p>"  # fmt: skip
    if isinstance(explanations, str):
        return f"<p class=fail>{escape(explanations)}</p>"
    return render_report(explanations)


def render(inputs: ReportInputs) -> str:
    """The report as one HTML document (no external resources)."""
    m = inputs.manifest
    status = ", ".join(inputs.aliases) or "not promoted"
    if inputs.archived:
        status += " (archived)"
    metrics = "".join(f"<tr><th>{escape(str(k))}</th><td>{_text(v)}</td></tr>" for k, v in sorted(m.metrics.items()))
    cost = "".join(f"<tr><th>{escape(str(k))}</th><td>{_text(v)}</td></tr>" for k, v in sorted((m.cost or {}).items()))
    files = "".join(
        f"<tr><td><code>{escape(rel)}</code></td><td>{e.size:,}</td><td><code>{escape(e.sha256)}</code></td></tr>"
        for rel, e in m.files.items()
    )
    inline = "".join(
        f"<details><summary>{escape(rel)}</summary><pre>{escape(json.dumps(value, indent=2, sort_keys=True))}</pre></details>"
        for rel, value in sorted(inputs.evidence.items())
    )
    sections = [
        f"<h1>{escape(m.name)} {escape(m.version)}</h1>",
        f"<p class=muted>Audit report generated {escape(inputs.generated_at)}. Manifest content sha256 "
        f"<code>{escape(m.content_sha256)}</code>.</p>",
        _table([("status", escape(status)), ("registered by", f"{escape(m.created_by)} ({escape(m.created_role)})"),
                ("registered at", escape(m.created_at)), ("reason", _text(m.reason))]),
        "<h2>Intended use</h2>",
        f"<p>{_text(m.intended_use or 'Not stated by the trainer. Classifies short texts into: ' + ', '.join(m.labels))}</p>",
        "<h2>Base model</h2>",
        _table([("model id", escape(m.base_model.model_id)),
                ("weights sha256", f"<code>{escape(m.base_model.weights_sha256)}</code>"),
                ("tokenizer sha256", f"<code>{escape(m.base_model.tokenizer_sha256)}</code>")]),
        "<h2>Adapter</h2>",
        _table([("PEFT type", _text(m.peft.peft_type)), ("rank r", _text(m.peft.r)), ("alpha", _text(m.peft.lora_alpha)),
                ("target modules", _text(", ".join(m.peft.target_modules))),
                ("modules saved whole", _text(", ".join(m.peft.modules_to_save))),
                ("labels (class order)", _text(", ".join(m.labels))), ("max length", _text(m.max_length))]),
        "<h2>Data</h2>",
        _table([("data version", f"<code>{_text(m.data_version)}</code>")]),
        "<h2>Metrics</h2>",
        f"<table>{metrics}</table>" if metrics else "<p class=muted>No metrics recorded.</p>",
        "<h2>Cost</h2>",
        f"<table>{cost}</table>" if cost else "<p class=muted>No cost recorded.</p>",
        "<h2>Gates</h2>",
        _gate(m, inputs.trail),
        "<h2>Explanations</h2>",
        _explanations(inputs.explanations),
        "<h2>Evidence files</h2>",
        f"<table><tr><th>file</th><th>bytes</th><th>sha256</th></tr>{files}</table>",
        inline,
        "<h2>Audit trail</h2>",
        _review([e for e in inputs.trail if e.version == m.version]),
        _trail(inputs.trail),
    ]  # fmt: skip
    body = "\n".join(sections)
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(m.name)} {escape(m.version)} audit report</title><style>{_CSS}{EXPLANATIONS_CSS}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
