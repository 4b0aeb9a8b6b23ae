"""The console's three actions, exactly as `tailor promote|rollback|archive` does them, signed as the person.

The one seam between the web pages and the registry's governance: every rule (roles, four-eyes,
a failed or stale gate, archived versions, a reason) is the registry's, and its refusal reaches the
page as the RefusedError the CLI prints. When the promotion use cases exist (pipelines/usecases),
these three functions call them instead.
"""

from __future__ import annotations

from pipelines.config import Settings
from registry.audit import AuditEvent
from registry.people import Credentials
from registry.store import S3ObjectStore


def _announce(event: AuditEvent, settings: Settings, person: Credentials) -> list[str]:
    """Send the event to the configured webhooks as the CLI does; the URLs not reached, for a warning."""
    from pipelines.webhooks import announce_audit_event

    store = S3ObjectStore(settings.store(person=person))
    return [d.url for d in announce_audit_event(event, settings, store=store) if not d.delivered]


def promote(settings: Settings, person: Credentials, name: str, version: str, to: str, *,
            reason: str) -> tuple[AuditEvent, list[str]]:  # fmt: skip
    """`tailor promote NAME VERSION --to TO --reason REASON` as ``person``: the event and unreached webhooks."""
    event = settings.open_registry(with_base=True, person=person).promote(name, version, to, reason=reason)
    return event, _announce(event, settings, person)


def rollback(settings: Settings, person: Credentials, name: str, *, alias: str, reason: str,
             expect: str | None) -> tuple[AuditEvent, list[str]]:  # fmt: skip
    """`tailor rollback NAME --alias ALIAS --expect-current EXPECT --reason REASON` as ``person``."""
    event = settings.open_registry(with_base=True, person=person).rollback(name, alias=alias, reason=reason,
                                                                          expect=expect)  # fmt: skip
    return event, _announce(event, settings, person)


def archive(settings: Settings, person: Credentials, name: str, version: str, *, reason: str) -> AuditEvent:
    """`tailor archive NAME VERSION --reason REASON` as ``person`` (the CLI announces no archive either)."""
    return settings.open_registry(person=person).archive(name, version, reason=reason)
