"""What the console lists: every adapter with its aliases and chain status, and the approvals queue."""

from __future__ import annotations

from dataclasses import dataclass

from registry.audit.events import AuditEvent
from registry.errors import IntegrityError, TailorError
from registry.manifest import is_version, version_number
from registry.registry import Registry


@dataclass(frozen=True)
class AdapterRow:
    name: str
    production: str | None
    staging: str | None
    last_event: AuditEvent | None
    signed: int
    events: int
    problem: str | None  # why its log does not verify, when it does not


@dataclass(frozen=True)
class Waiting:
    """A version whose gate passed and that production never held: an approver's to decide."""

    name: str
    version: str
    registered_by: str
    production: str | None
    staging: bool


def adapter_names(registry: Registry) -> list[str]:
    return sorted(registry.store.folders("audit/"))


def adapters(registry: Registry) -> list[AdapterRow]:
    """Each adapter's aliases and newest event; a log that fails its checks is listed with the reason."""
    rows = []
    for name in adapter_names(registry):
        try:
            state = registry.state(name)
            events = registry.log.read(name, [state.head_seq]) if state.head_seq else []
            rows.append(
                AdapterRow(
                    name,
                    state.aliases.get("production"),
                    state.aliases.get("staging"),
                    events[-1] if events else None,
                    state.signed,
                    state.head_seq,
                    None,
                )
            )
        except TailorError as err:
            rows.append(AdapterRow(name, None, None, None, 0, 0, str(err)))
    return rows


def waiting(registry: Registry) -> list[Waiting]:
    """Versions waiting for a second person: gate passed, not archived, never held by production."""
    found = []
    for name in adapter_names(registry):
        try:
            state = registry.state(name)
        except IntegrityError:
            continue  # the adapters page names the broken log
        production = state.aliases.get("production")
        held = set(state.history.get("production", []))
        for version in sorted(state.versions, key=version_number):
            verdict = state.verdict(version)
            if (
                is_version(version)
                and verdict is not None
                and verdict.passed
                and version not in held
                and version not in state.archived
                and (production is None or version_number(version) > version_number(production))
            ):
                found.append(
                    Waiting(
                        name,
                        version,
                        state.registered_by.get(version, ""),
                        production,
                        state.aliases.get("staging") == version,
                    )
                )
    return found
