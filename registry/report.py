"""What the audit report of one version rests on: its checked manifest, its audit trail and its small
JSON evidence files, read from the registry with every hash checked.

`tailor report` and the console render it (pipelines/console/render.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from registry.audit.events import AuditEvent
from registry.explanations import (
    EXPLANATIONS_FILE,
    ExplanationsReport,
    read_report,
)
from registry.manifest import Manifest
from registry.registry import Registry

EVIDENCE_MAX_BYTES = 64 * 1024
EXPLANATIONS_MAX_BYTES = 4 * 2**20  # a few hundred explained rows; evaluation's budget keeps it far smaller


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
            explanations = (
                f"{EXPLANATIONS_FILE} is {entry.size:,} bytes, more than the {EXPLANATIONS_MAX_BYTES:,} shown"
            )
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
