"""`tailor register|list|show|download|promote|rollback|archive`: adapter versions and their aliases.

Who acts comes from the settings: ``TAILOR_ROLE`` picks the store credentials and the registry's
role rules, ``TAILOR_ACTOR`` (else the OS user) is the name written into the audit log.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from pipelines.cli.choices import Alias
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.cli.table import table
from pipelines.cli.version_ref import VERSION, parse_ref
from pipelines.usecases import promotion
from registry.audit.events import AuditEvent
from registry.text import escape_control

REASON = typer.Option(..., "--reason", help="why: recorded in the audit log")


def _warn_undelivered(announced: promotion.Announced) -> None:
    for delivery in announced.undelivered:
        typer.echo(f"warning: webhook {delivery.url} not reached after {len(delivery.attempts)} attempts", err=True)


def event_line(event: AuditEvent) -> str:
    """One audit event as a line a person can read (events written before reasons and actors were
    checked may still hold line breaks)."""
    alias = f" {event.alias}: {event.alias_before or '-'} → {event.alias_after}" if event.alias else ""
    override = " OVERRIDE" if event.override else ""
    return (
        f"{event.key_name}  {event.time}  {escape_control(event.actor)} ({event.role})  {event.action} {event.version}"
        f'{alias}{override}  "{escape_control(event.reason)}"'
    )


def register(
    adapter_dir: Path = typer.Argument(..., help="PEFT adapter folder written by `tailor train`"),
    name: str = typer.Option(..., "--name", help="adapter name: letters, digits, '.', '_' or '-'"),
    reason: str = typer.Option("", "--reason", help="why: recorded in the audit log"),
    card: Path = typer.Option(
        None,
        "--card",
        help="model card (YAML or JSON: intended_use, limitations, "
        "languages), stored with the version and shown first in the console and report",
    ),
    as_json: bool = JSON,
) -> None:
    """Upload an adapter folder as the next immutable version (v1, v2, …) of NAME."""
    if card is not None:
        from pipelines.model_card_file import add_card, read_card

        add_card(adapter_dir, read_card(card))
    manifest = state.context().registry(with_base=True).register(adapter_dir, name, reason=reason)
    emit(
        manifest,
        as_json=as_json,
        text=f"registered {manifest.name} {manifest.version} "
        f"({len(manifest.files)} files, content sha256 {manifest.content_sha256[:16]}…)",
    )


def _notes(row: dict) -> list[str]:
    return (["ARCHIVED"] if row["archived"] else []) + (
        [f"FAILS ITS CHECK: {row['problem']}"] if row["problem"] is not None else []
    )


def list_versions(name: str = typer.Argument(..., help="adapter name"), as_json: bool = JSON) -> None:
    """List the versions of NAME with their aliases, gate result and archived flag.

    A version whose manifest fails its check is listed with the reason, and the command exits 1.
    """
    registry = state.context().registry()
    current = registry.state(name)
    rows = []
    for item in registry.listing(name):
        m = item.manifest
        gate = current.verdict(item.version) if m else None  # judged again after registering: the newest verdict
        rows.append(
            {
                "version": item.version,
                "created_by": m and m.created_by,
                "created_at": m and m.created_at,
                "aliases": sorted(a for a, v in current.aliases.items() if v == item.version),
                "archived": item.version in current.archived,
                "gate_passed": gate.passed if gate else None,
                "gate": gate.verdict if gate else None,
                "content_sha256": m and m.content_sha256,
                "problem": item.problem,
            }
        )
    listed = table(
        ("version", "created (UTC)", "by", "gate", "aliases", "note"),
        (
            (
                r["version"],
                r["created_at"] and r["created_at"][:19],
                r["created_by"],
                r["gate"] if r["gate"] is None or r["gate_passed"] else r["gate"].upper(),
                ", ".join(r["aliases"]) or None,
                "  ".join(_notes(r)) or None,
            )
            for r in rows
        ),
    )
    emit(rows, as_json=as_json, text=listed if rows else f"'{name}' has no versions yet")
    if any(r["problem"] is not None for r in rows):
        raise typer.Exit(1)


def show(name: str = typer.Argument(...), version: str | None = VERSION, as_json: bool = JSON) -> None:
    """Show a version's manifest: files and hashes, base model, PEFT config, metrics, gate."""
    ref = parse_ref(name, version)
    registry = state.context().registry()
    name, version = ref.resolved(lambda: registry)
    manifest = registry.manifest(name, version)
    current = registry.state(name)
    record = {
        **asdict(manifest),
        "aliases": sorted(a for a, v in current.aliases.items() if v == version),
        "archived": version in current.archived,
    }
    emit(record, as_json=as_json)


def download(
    name: str = typer.Argument(...),
    ref: str = typer.Argument(..., help="version (v3) or alias (production, staging); after NAME@VERSION: DEST"),
    dest: Path | None = typer.Argument(None, help="new folder to write the adapter into", show_default=False),
    as_json: bool = JSON,
) -> None:
    """Download a version or the version an alias names; every file's sha256 is checked first."""
    parsed = parse_ref(name) if dest is None else parse_ref(name, ref)
    dest = Path(ref) if dest is None else dest
    name = parsed.name
    manifest = state.context().registry().download(name, parsed.ref, dest)
    text = f"downloaded {name} {manifest.version} into {dest} ({len(manifest.files)} files verified)"
    emit(
        {"name": name, "version": manifest.version, "dest": dest, "files": sorted(manifest.files)},
        as_json=as_json,
        text=text,
    )


def promote(
    name: str = typer.Argument(...),
    version: str | None = VERSION,
    to: Alias = typer.Option(..., "--to", help="the alias to move"),
    reason: str = REASON,
    override: bool = typer.Option(False, "--override", help="approver only: promote past a failed gate"),
    as_json: bool = JSON,
) -> None:
    """Point an alias at a version (production: gate passed, four-eyes, not archived)."""
    name, version = parse_ref(name, version).resolved(state.context().registry)
    announced = promotion.promote(state.context(), name, version, to, reason, override=override)
    _warn_undelivered(announced)
    event = announced.event
    emit(
        event,
        as_json=as_json,
        text=f"promoted {name} {version} to {to} (was {event.alias_before or 'unset'}; audit event {event.key_name})",
    )


def rollback(
    name: str = typer.Argument(...),
    alias: Alias = typer.Option("production", "--alias", help="alias to roll back"),
    reason: str = REASON,
    expect: str = typer.Option(
        None, "--expect-current", help="the version you mean to replace (e.g. v3): refused if the alias moved meanwhile"
    ),
    as_json: bool = JSON,
) -> None:
    """Point an alias back at the version it held before, once that version's files are proven."""
    announced = promotion.rollback(state.context(), name, reason, alias=alias, expect=expect)
    _warn_undelivered(announced)
    event = announced.event
    emit(
        event,
        as_json=as_json,
        text=f"rolled {alias} of {name} back from {event.alias_before} to "
        f"{event.alias_after} (audit event {event.key_name})",
    )


def archive(
    name: str = typer.Argument(...), version: str | None = VERSION, reason: str = REASON, as_json: bool = JSON
) -> None:
    """Archive a version: it stays stored and listed but can never be promoted again."""
    name, version = parse_ref(name, version).resolved(state.context().registry)
    event = promotion.archive(state.context(), name, version, reason)
    emit(event, as_json=as_json, text=f"archived {name} {version} (audit event {event.key_name})")


def attach(app: typer.Typer) -> None:
    app.command("register")(register)
    app.command("list")(list_versions)
    app.command("show")(show)
    app.command("download")(download)
    app.command("promote")(promote)
    app.command("rollback")(rollback)
    app.command("archive")(archive)
