"""`tailor user init|keygen|add|list|disable|rotate|confirm`: people and services, each with their own keys.

A person acts by pointing the ``credentials_file`` setting (TAILOR_CREDENTIALS_FILE) at the file
`user add` wrote for them; the audit log then records them, signed with their key, whatever
TAILOR_ACTOR says (a TAILOR_ACTOR naming someone else is refused).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import typer

from pipelines.cli.choices import Role
from pipelines.cli.output import JSON, emit
from pipelines.cli.state import state
from pipelines.cli.table import table
from pipelines.cli.user_keys import (
    acting_admin,
    issue_and_publish,
    pending_note,
    reload_store,
    set_person_identity_of,
    store_keys,
)
from registry.errors import ConfigError, NotFoundError, RefusedError
from registry.key_log import KeyLog
from registry.keyring import KeyEvent, validate_person
from registry.people import (
    credentials_path,
    init_keyring,
    people,
    publish,
    signing_key_path,
    write_credentials,
    write_signing_key,
)
from registry.signing import new_private_key, public_key_of
from registry.store import S3ObjectStore

app = typer.Typer(
    help="People and services who act on the registry, each with their own store and signing keys.",
    no_args_is_help=True,
)

OUT = typer.Option(None, "--out", help="where to write the credentials file (default: <home>/credentials/NAME.json)")
ACCESS = typer.Option(None, "--access-key", help="another S3 server: the keys an admin made there for this person")
SECRET = typer.Option(None, "--secret-key", help="with --access-key")
RECOVERY = typer.Option(
    None,
    "--recovery-key-file",
    help="sign with the offline recovery key (a file holding it) instead of your own admin key",
)
REASON = typer.Option("", "--reason", help="why: recorded in the keyring")


@app.command()
def init(
    name: str = typer.Option("admin", "--name", help="the first admin's person name"),
    out: Path = OUT,
    access_key: str = ACCESS,
    secret_key: str = SECRET,
    as_json: bool = JSON,
    quorum: int = typer.Option(
        2, "--quorum", min=1, max=2, help="admins who must agree to a key change (2: a second admin confirms)"
    ),
) -> None:
    """Start the store's keyring: the first admin (their credentials file) and an offline recovery key,
    printed once, with the quorum and the registry rules every reader replays from then on. Existing
    audit logs are verified and sealed as unsigned legacy."""
    settings = state.settings()
    validate_person(name)
    path = out or credentials_path(settings.home, name)
    if path.exists():
        raise RefusedError(f"{path} exists: give another --out")
    admin_store = settings.store("admin")
    keys = store_keys(name, "admin", access_key, secret_key)
    registry = state.context().registry()
    started = init_keyring(
        S3ObjectStore(admin_store),
        registry.log,
        name,
        access_key=keys[0],
        secret_key=keys[1],
        bucket=settings.bucket,
        rules=registry.rules,
        quorum=quorum,
    )
    write_credentials(path, started.admin)
    reload_store()
    record = {
        "name": name,
        "credentials_file": str(path),
        "trust_root": started.trust_root,
        "recovery_key": started.recovery_key,
        "legacy_logs": sorted(started.legacy),
    }
    emit(
        record,
        as_json=as_json,
        text=(
            f"keyring started; first admin {name}: credentials_file {path}\n"
            f"trust root: {started.trust_root} (pin it as trust_root on every server)\n"
            f"recovery key (shown once, keep it offline; it can add or disable admins): {started.recovery_key}"
            + (f"\nsealed as unsigned legacy: {', '.join(sorted(started.legacy))}" if started.legacy else "")
        ),
    )
    typer.echo(
        "WARNING: the shared role identities (trainer, approver, reader) still hold store keys: their holders "
        "can write objects, though no event they write without a person's signing key counts. Once everyone "
        "has been added with `tailor user add`, remove them from the store's identities (Tailor does not yet: "
        "the embedded store's identities.json, or that server's tools).",
        err=True,
    )


@app.command()
def keygen(
    name: str = typer.Argument(..., help="your person name, as the admin will add you"),
    out: Path = typer.Option(None, "--out", help="your key file (default: <home>/credentials/NAME.key)"),
    as_json: bool = JSON,
) -> None:
    """Make your own signing key: the private key goes to a file only you can read (0600), the public
    key is printed for the admin's `tailor user add NAME --role ROLE --public-key KEY`."""
    validate_person(name)
    private = new_private_key()
    path = write_signing_key(out or signing_key_path(credentials_path(state.settings().home, name)), private)
    public = public_key_of(private)
    emit(
        {"name": name, "key_file": str(path), "public_key": public},
        as_json=as_json,
        text=(
            f"your private signing key: {path} (mode 0600, never share it)\n"
            f"public key, for the admin's `tailor user add {name} --role ROLE --public-key …`: {public}\n"
            f"put the credentials file the admin gives you beside it, as {path.with_suffix('.json')}"
        ),
    )


@app.command()
def add(
    name: str = typer.Argument(..., help="person (or service) name: lowercase ASCII letters, digits, '.', '_', '-'"),
    role: Role = typer.Option(..., "--role", help="what the identity may do"),
    service: bool = typer.Option(False, "--service", help="a service (a server's reader, a schedule's trainer)"),
    out: Path = OUT,
    access_key: str = ACCESS,
    secret_key: str = SECRET,
    reason: str = REASON,
    recovery_key_file: Path = RECOVERY,
    public_key: str = typer.Option(
        None,
        "--public-key",
        help="the public key NAME's `tailor user keygen` printed: their private key never leaves their machine",
    ),
    as_json: bool = JSON,
) -> None:
    """Add a person or service (admin only): store identity, signing key, published in the keyring."""
    settings = state.settings()
    validate_person(name)
    path = out or credentials_path(settings.home, name)
    store, signer, trust_root = acting_admin(recovery_key_file)
    kind = "service" if service else "person"
    if name in KeyLog(store, trust_root).keyring().people:
        raise RefusedError(f"{name} exists already (rotate their key instead)")

    def publish_key(public: str) -> KeyEvent:
        return publish(store, trust_root, signer, "add", name, role=role, kind=kind, public_key=public, reason=reason)

    try:
        event = issue_and_publish(path, name, role, kind, trust_root, access_key, secret_key, publish_key, public_key)
    except RefusedError:
        if settings.endpoint is None:  # the store identity made for a key the keyring refused
            set_person_identity_of(settings.embedded_store(), name, None)  # type: ignore[arg-type]
        raise
    pending = pending_note(store, trust_root, event)
    handover = f"; give it to {name}: it goes beside their key file, as {name}.json" if public_key else ""
    emit(
        {
            "name": name,
            "role": role,
            "kind": kind,
            "credentials_file": str(path),
            "key_event": event.seq,
            "pending": bool(pending),
        },
        as_json=as_json,
        text=f"added {kind} {name} ({role}), key event {event.seq}{pending}; credentials_file: {path}{handover}",
    )


@app.command()
def rotate(
    name: str = typer.Argument(...),
    out: Path = OUT,
    access_key: str = ACCESS,
    secret_key: str = SECRET,
    reason: str = REASON,
    recovery_key_file: Path = RECOVERY,
    as_json: bool = JSON,
) -> None:
    """Give NAME a new signing key and new store keys; the old key stops counting now, or, where the
    keyring's quorum is 2 and two admins or more exist, once a second admin confirms the new one."""
    settings = state.settings()
    store, signer, trust_root = acting_admin(recovery_key_file)
    ring = KeyLog(store, trust_root).keyring()
    if name not in ring.people:
        raise NotFoundError(f"{name} is not in the keyring (`tailor user list`)")
    record = ring.keys[ring.people[name]]
    path = out or credentials_path(settings.home, f"{name}-{secrets.token_hex(4)}")

    def publish_key(public: str) -> KeyEvent:
        return publish(
            store,
            trust_root,
            signer,
            "rotate",
            name,
            role=record.role,
            kind=record.kind,
            public_key=public,
            reason=reason,
        )

    event = issue_and_publish(path, name, record.role, record.kind, trust_root, access_key, secret_key, publish_key)
    pending = pending_note(store, trust_root, event)
    emit(
        {"name": name, "credentials_file": str(path), "key_event": event.seq, "pending": bool(pending)},
        as_json=as_json,
        text=f"rotated {name}'s keys (key event {event.seq}){pending}; new credentials_file: {path}",
    )


@app.command()
def disable(
    name: str = typer.Argument(...), reason: str = REASON, recovery_key_file: Path = RECOVERY, as_json: bool = JSON
) -> None:
    """Disable NAME: their signing key stops counting now and their store identity is removed (an
    admin's, where the keyring's quorum is 2 and two admins or more exist, once a second admin confirms)."""
    store, signer, trust_root = acting_admin(recovery_key_file)
    event = publish(store, trust_root, signer, "disable", name, reason=reason)
    pending = pending_note(store, trust_root, event)
    if not pending:
        _remove_store_identity(name)
    emit(
        {"name": name, "key_event": event.seq, "pending": bool(pending)},
        as_json=as_json,
        text=f"disabled {name} (key event {event.seq}){pending}",
    )


def _remove_store_identity(name: str) -> None:
    if state.settings().endpoint is None:
        set_person_identity_of(state.settings().embedded_store(), name, None)
        reload_store()
    else:
        typer.echo(f"remove {name}'s keys on {state.settings().endpoint} with that server's tools too", err=True)


@app.command()
def confirm(
    seq: int = typer.Argument(..., help="the key event to confirm (`tailor user list` shows pending ones)"),
    as_json: bool = JSON,
) -> None:
    """Confirm another admin's key change: where the keyring's quorum is 2 and two admins or
    more exist, a new key (or an admin's disable) counts only then."""
    store, signer, trust_root = acting_admin(None)
    ring = KeyLog(store, trust_root).keyring()
    pending = next((e for e in ring.pending.values() if e.seq == seq), None)
    if pending is None:
        raise NotFoundError(f"key event {seq} is not waiting for confirmation")
    event = publish(store, trust_root, signer, "confirm", pending.person, confirms=pending.sha256)
    if pending.action == "disable":
        _remove_store_identity(pending.person)
    emit(
        {"confirmed": seq, "key_event": event.seq},
        as_json=as_json,
        text=f"confirmed key event {seq} ({pending.action} {pending.person}); key event {event.seq}",
    )


@app.command("list")
def list_people(as_json: bool = JSON) -> None:
    """Everyone in the keyring, with role, kind, key id and status."""
    registry = state.context().registry()
    ring = registry.keyring()
    if ring is None:
        raise NotFoundError("this store has no keyring yet: `tailor user init` starts it")
    rows = people(ring)
    emit(
        rows,
        as_json=as_json,
        text=table(
            ("name", "role", "kind", "key", "status"), ((r.name, r.role, r.kind, r.key_id, r.status) for r in rows)
        ),
    )


@app.command()
def passwd(
    passphrase_stdin: bool = typer.Option(
        False, "--passphrase-stdin", help="read the passphrase from the first line of stdin (scripts)"
    ),
    as_json: bool = JSON,
) -> None:
    """Set your console passphrase: `tailor console` then signs you in with it and signs your actions
    with your key, which it keeps sealed under the passphrase (run it with your credentials_file)."""
    import sys

    from pipelines.cli.console import accounts_folder
    from pipelines.console.accounts import write_account
    from registry.people import is_credentials_file, read_credentials

    settings = state.settings()
    if settings.credentials_file is None or not is_credentials_file(settings.credentials_file):
        raise ConfigError(
            "credentials_file: point it at your own credentials file (from `tailor user add`): the "
            "console signs your actions with the key it holds"
        )
    person = read_credentials(settings.credentials_file)
    if person.kind != "person":
        raise RefusedError(f"{person.name} is a service: only people sign in to the console")
    if passphrase_stdin:
        phrase = sys.stdin.readline().rstrip("\r\n")
    else:
        phrase = typer.prompt(f"console passphrase for {person.name}", hide_input=True, confirmation_prompt=True)
    path = write_account(accounts_folder(settings.home), person, phrase)
    emit(
        {"name": person.name, "account_file": str(path)},
        as_json=as_json,
        text=f"{person.name} can sign in to `tailor console` ({path})",
    )


def attach(parent: typer.Typer) -> None:
    parent.add_typer(app, name="user")
