"""The console's three actions through the same use cases as `tailor promote|rollback|archive`, signed as
the person signed in.

Every rule (roles, four-eyes, a failed or stale gate, archived versions, a reason) is the registry's, and
its refusal reaches the page as the RefusedError the CLI prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.usecases import promotion

if TYPE_CHECKING:
    from pipelines.context import Context
    from registry.audit.events import AuditEvent
    from registry.people import Credentials


def _missed(announced: promotion.Announced) -> list[str]:
    """The webhook URLs not reached, for a warning on the page."""
    return [d.url for d in announced.undelivered]


def promote(
    ctx: "Context", person: "Credentials", name: str, version: str, to: str, *, reason: str
) -> tuple["AuditEvent", list[str]]:
    """`tailor promote NAME VERSION --to TO --reason REASON` as ``person``: the event and unreached webhooks."""
    announced = promotion.promote(ctx, name, version, to, reason, acting=ctx.settings.store(person=person))
    return announced.event, _missed(announced)


def rollback(
    ctx: "Context", person: "Credentials", name: str, *, alias: str, reason: str, expect: str | None
) -> tuple["AuditEvent", list[str]]:
    """`tailor rollback NAME --alias ALIAS --expect-current EXPECT --reason REASON` as ``person``."""
    announced = promotion.rollback(
        ctx, name, reason, alias=alias, expect=expect, acting=ctx.settings.store(person=person)
    )
    return announced.event, _missed(announced)


def archive(ctx: "Context", person: "Credentials", name: str, version: str, *, reason: str) -> "AuditEvent":
    """`tailor archive NAME VERSION --reason REASON` as ``person`` (the CLI announces no archive either)."""
    return promotion.archive(ctx, name, version, reason, acting=ctx.settings.store(person=person))
