"""What the audit report of one version rests on: its checked manifest, its audit trail and its small
JSON evidence files, read from the registry with every hash checked.

`tailor report` and the console render it (pipelines/console/render.py).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from registry.audit import AuditEvent
from registry.manifest import Manifest
from registry.registry import Registry

EVIDENCE_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows, gathered (and hash-checked) from the registry."""

    manifest: Manifest
    aliases: list[str]
    archived: bool
    trail: list[AuditEvent]
    evidence: dict[str, Any]  # small JSON files of the version, parsed
    generated_at: str


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
    evidence = {}
    for rel, data in registry.verified_files(manifest, only=wanted):
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
    )
