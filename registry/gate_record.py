"""A version's gate verdict as the audit log records it: registered with its manifest, judged again
by ``judge`` events, and checked against what each event claims."""

from __future__ import annotations

from dataclasses import asdict, fields

from registry.audit.events import AuditEvent
from registry.audit.state import AliasState
from registry.errors import IntegrityError
from registry.gate_summary import GateSummary
from registry.manifest import Manifest


def gate_fields(manifest: Manifest, gate: GateSummary | None = None) -> dict:
    """What an audit event records of a version's gate decision (``gate``, or the one it was registered with)."""
    gate = gate or manifest.gate
    return {"policy_sha256": gate.policy_sha256 if gate else None, "gate": asdict(gate) if gate else None}


def judged_gate(event: AuditEvent) -> GateSummary:
    """The verdict a ``judge`` event records, without the evidence it carries beside it."""
    wanted = {f.name for f in fields(GateSummary)}
    return GateSummary(**{k: v for k, v in event.gate.items() if k in wanted})


def standing_gate(state: AliasState, manifest: Manifest) -> GateSummary | None:
    """``latest_gate`` as the folded state keeps it, without reading the events again (a cold promote
    that started from a checkpoint has not read them); ``manifest.gate`` itself when never judged again."""
    gate = state.verdict(manifest.version)
    return manifest.gate if gate is None or gate == manifest.gate else gate


def latest_gate(events: list[AuditEvent], manifest: Manifest) -> GateSummary | None:
    """``manifest``'s gate verdict as it stands: the newest ``judge`` event's for its version, else the registered one.

    A version judged again (its load, once the machine was quiet) keeps its manifest; the new verdict
    and its evidence live in the event, so the register event's record is never edited.
    """
    judged = [e for e in events if e.action == "judge" and e.version == manifest.version and e.gate is not None]
    return judged_gate(judged[-1]) if judged else manifest.gate


def require_gate_as_recorded(event: AuditEvent, manifest: Manifest, gate: GateSummary | None) -> None:
    """Raises: IntegrityError: ``event`` claims a gate other than ``gate``, the verdict its version held
    then (the manifest's, or the newest ``judge`` event's before it)."""
    actual = gate_fields(manifest, gate)
    claimed = event.gate
    same = event.policy_sha256 == actual["policy_sha256"] and (
        claimed is None
        if actual["gate"] is None
        else claimed is not None and all(actual["gate"].get(k) == v for k, v in claimed.items())
    )
    if not same:
        raise IntegrityError(
            f"event {event.key_name} of '{event.name}' ({event.action} {event.version}) records a "
            f"gate other than the one in {event.version}'s manifest: forged or rewritten"
        )
