"""`tailor audit log|verify|at`: read and prove the hash-chained audit log of an adapter name."""

from __future__ import annotations

import typer

from pipelines.cli.choices import Alias
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.cli.version_ref import parse_ref, split_ref
from pipelines.cli.versions import event_line
from registry.base_manifest import audited_base
from registry.base_models import BaseModels
from registry.errors import ConfigError, NotFoundError
from registry.layout import no_audit_log
from registry.manifest import is_version

NAME_HELP = "adapter name, or base:NAME (also _base.NAME) for the log of a registered base model"

app = typer.Typer(help="Read and verify the append-only, hash-chained audit log.", no_args_is_help=True)


@app.command("log")
def log(
    name: str = typer.Argument(..., help=NAME_HELP + " (NAME@VERSION: only that version's events)"),
    version: str = typer.Option(
        None, "--version", help="only the events about this version (v1, v2, … or an alias: the version it names now)"
    ),
    as_json: bool = JSON,
) -> None:
    """Print every event of NAME, oldest first (the chain is checked while reading)."""
    base = audited_base(name)
    # A bad version form is refused before the store is reached.
    if base and version is not None and not is_version(version):
        raise ConfigError(f"a base model's log has one version, v1: give `tailor audit log base:{base} --version v1`")
    ref = None if base or (version is None and not split_ref(name)) else parse_ref(name, version)
    registry = state.context().registry()
    if ref is not None:
        name, version = ref.resolved(lambda: registry)
    events = BaseModels(registry).events(base) if base else registry.events(name)
    if not events:
        raise no_audit_log(name)
    if version is not None:
        events = [e for e in events if e.version == version]
        if not events:
            listing = "`tailor base list`" if base else f"`tailor list {name}`"
            raise NotFoundError(f"'{name}' has no version {version} (see {listing})")
    emit(events, as_json=as_json, text="\n".join(event_line(e) for e in events))


@app.command("verify")
def verify(name: str = typer.Argument(..., help=NAME_HELP), as_json: bool = JSON) -> None:
    """Prove the whole chain, its signatures and rules, every manifest and stored file; exit 1 naming the first
    modified, deleted, inserted or forged event."""
    registry, base = state.context().registry(), audited_base(name)
    result = BaseModels(registry).verify(base) if base else registry.verify(name)
    if not result.keyring:
        typer.echo(
            "WARNING: this store has no keyring, so its events are not signed: whoever holds write keys "
            "could have written any of them as anyone. Start signing with `tailor user init` "
            "(docs/security.md).",
            err=True,
        )
    aliases = ", ".join(f"{a}={v}" for a, v in sorted(result.aliases.items())) or "no aliases"
    incomplete = f"; unfinished uploads (no manifest): {', '.join(result.incomplete)}" if result.incomplete else ""
    review = "".join(f"\n  to review: {item}" for item in result.to_review)
    legacy = result.events - result.signed
    signed = f"; {result.signed} signed, {legacy} unsigned legacy" if result.keyring else ""
    keys = "".join(f"\n  keyring: {line}" for line in result.keyring)
    emit(
        result,
        as_json=as_json,
        text=f"audit log of '{result.name}' verified: {result.events} events, head "
        f"{result.head_sha256[:16]}…, {len(result.versions)} versions, {aliases}{incomplete}{signed}{review}{keys}",
    )


@app.command("clear")
def clear(
    name: str = typer.Argument(..., help="adapter name"),
    reason: str = typer.Option(..., "--reason", help="why: recorded in the audit log"),
    as_json: bool = JSON,
) -> None:
    """Admin: remove the newest object of NAME's log when it alone fails verification (junk or a forged
    event freezing the name); it stays among the bucket's object versions and the log records the clearing."""
    event = state.context().registry().clear(name, reason=reason)
    emit(
        event,
        as_json=as_json,
        text=f"cleared the newest object of '{name}' (audit event {event.key_name}): {event.reason}",
    )


@app.command("at")
def at(
    name: str = typer.Argument(..., help="adapter name"),
    alias: Alias = typer.Option("production", "--alias"),
    when: str = typer.Option(..., "--time", help="ISO 8601, e.g. 2026-11-27T23:00:00Z"),
    as_json: bool = JSON,
) -> None:
    """Which version held ALIAS at a given time (replaying the log up to then)."""
    version, event = state.context().registry().alias_at(name, alias, when)
    record = {"name": name, "alias": alias, "time": when, "version": version, "event": event}
    text = f"{alias} of {name} at {when}: {version or 'unset'}" + (f" (since event {event.key_name})" if event else "")
    emit(record, as_json=as_json, text=text)


def attach(parent: typer.Typer) -> None:
    parent.add_typer(app, name="audit")
