"""Promote, roll back and archive adapter versions: the one path the CLI and the flows take.

A promotion or rollback is announced to the configured webhooks once the alias moved. Who acts is
``acting`` (a person's store settings, as the web console signs), by default the configured role
and actor. Archiving is not announced: receivers learn of alias moves only.

``move_alias``/``move_back`` and ``announce`` are separate so that a flow can retry each on its own:
retrying a promotion whose announcement failed would try to move the alias a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.context import Context
    from pipelines.webhooks import Delivery
    from registry.audit.events import AuditEvent
    from registry.settings import StoreSettings


@dataclass(frozen=True)
class Announced:
    """An alias move and what became of its announcement."""

    event: "AuditEvent"
    deliveries: list["Delivery"]

    @property
    def undelivered(self) -> list["Delivery"]:
        """Deliveries that failed after every retry (logged in the store all the same)."""
        return [d for d in self.deliveries if not d.delivered]


def move_alias(
    ctx: "Context",
    name: str,
    version: str,
    to: str,
    reason: str,
    *,
    override: bool = False,
    acting: "StoreSettings | None" = None,
) -> "AuditEvent":
    """Point alias ``to`` at ``version`` under the registry's rules (production: gate, four-eyes).

    Raises:
        RefusedError: a rule refuses it (role, four-eyes, failed gate without override, archived).
        NotFoundError: no such name or version.
    """
    return ctx.registry(with_base=True, acting=acting).promote(name, version, to, reason=reason, override=override)


def move_back(
    ctx: "Context",
    name: str,
    reason: str,
    *,
    alias: str = "production",
    expect: str | None = None,
    acting: "StoreSettings | None" = None,
) -> "AuditEvent":
    """Point ``alias`` back at the version it held before, once that version's files are proven.

    Raises:
        RefusedError: a rule refuses it, or ``expect`` is not the version the alias holds now.
    """
    return ctx.registry(with_base=True, acting=acting).rollback(name, alias=alias, reason=reason, expect=expect)


def announce(ctx: "Context", event: "AuditEvent", acting: "StoreSettings | None" = None) -> list["Delivery"]:
    """Send the signed event to every configured webhook (retried, each delivery logged in the store)."""
    return ctx.announce(event, acting)


def promote(
    ctx: "Context",
    name: str,
    version: str,
    to: str,
    reason: str,
    *,
    override: bool = False,
    acting: "StoreSettings | None" = None,
) -> Announced:
    """``move_alias``, then announce it."""
    event = move_alias(ctx, name, version, to, reason, override=override, acting=acting)
    return Announced(event, announce(ctx, event, acting))


def rollback(
    ctx: "Context",
    name: str,
    reason: str,
    *,
    alias: str = "production",
    expect: str | None = None,
    acting: "StoreSettings | None" = None,
) -> Announced:
    """``move_back``, then announce it."""
    event = move_back(ctx, name, reason, alias=alias, expect=expect, acting=acting)
    return Announced(event, announce(ctx, event, acting))


def archive(
    ctx: "Context", name: str, version: str, reason: str, *, acting: "StoreSettings | None" = None
) -> "AuditEvent":
    """Archive ``version``: it stays stored and listed but can never be promoted again.

    Raises:
        RefusedError: the role may not archive, or the version is what an alias points at.
    """
    return ctx.registry(acting=acting).archive(name, version, reason=reason)
