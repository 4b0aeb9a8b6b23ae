"""What `tailor user` commands share: making a person's store keys and credentials file (a public key
is published only once its private half is safely written), and who signs a keyring change."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Callable

import typer

from pipelines.cli.choices import Role
from pipelines.cli.state import state
from pipelines.servers import seaweedfs, seaweedfs_identities
from registry.errors import ConfigError, RefusedError
from registry.key_log import KeyLog
from registry.keyring import KeyEvent
from registry.people import Credentials, write_credentials
from registry.signing import Signer, key_id, new_private_key, public_key_of
from registry.store import S3ObjectStore


def set_person_identity_of(
    cfg: seaweedfs.EmbeddedStoreConfig, person: str, role: Role | None
) -> tuple[str, str] | None:
    return seaweedfs_identities.set_person_identity(cfg.identities_file, cfg.bucket, person, role)


def store_keys(name: str, role: str, access_key: str | None, secret_key: str | None) -> tuple[str, str]:
    """The new identity's store keys: made on the embedded store, given for any other server."""
    settings = state.settings()
    if settings.endpoint is None:
        if access_key or secret_key:
            raise ConfigError(
                "--access-key/--secret-key: the embedded store makes its own keys; give them only for "
                "another S3 server (endpoint set)"
            )
        keys = set_person_identity_of(settings.embedded_store(), name, role)  # type: ignore[arg-type]
        assert keys is not None
        return keys
    if not (access_key and secret_key):
        raise ConfigError(
            f"--access-key/--secret-key: on {settings.endpoint} make {name}'s keys with that server's "
            "tools (least permissions for the role), then register them here"
        )
    return access_key, secret_key


def issue_and_publish(
    path: Path,
    name: str,
    role: str,
    kind: str,
    trust_root: str,
    access_key: str | None,
    secret_key: str | None,
    publish_key: Callable[[str], KeyEvent],
    public_key: str | None = None,
) -> KeyEvent:
    """Make the identity's store keys and write its credentials file aside first, then publish its
    public key (``publish_key``), then put the file in place: a key is never published whose
    private half was lost to a refused argument or a failed write.

    With ``public_key`` (the person ran `tailor user keygen`), the file holds no signing key: the
    person's own key file beside it does, and the admin never sees it.
    """
    if path.exists():
        raise RefusedError(f"{path} exists: give another --out")
    if public_key is not None:
        public_key_of_person = public_key
        key_id(public_key)  # a malformed key is refused before anything is made
        signing_key = ""
    else:
        signing_key = new_private_key()
        public_key_of_person = public_key_of(signing_key)
    access, secret = store_keys(name, role, access_key, secret_key)
    aside = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    write_credentials(
        aside,
        Credentials(
            name=name,
            role=role,
            kind=kind,
            access_key=access,
            secret_key=secret,
            signing_key=signing_key,
            trust_root=trust_root,
            bucket=state.settings().bucket,
        ),
    )
    try:
        event = publish_key(public_key_of_person)
    except BaseException:
        aside.unlink(missing_ok=True)
        raise
    aside.replace(path)
    reload_store()
    return event


def pending_note(store: S3ObjectStore, trust_root: str, event: KeyEvent) -> str:
    """What to do next when ``event`` waits for a second admin, else nothing."""
    if event.sha256 not in KeyLog(store, trust_root).keyring().pending:
        return ""
    return f" (counts once a second admin confirms: `tailor user confirm {event.seq}`)"


def reload_store() -> None:
    if state.settings().endpoint is None and seaweedfs.restart_if_running(state.settings().embedded_store()):
        typer.echo("restarted the embedded store so that it reads the changed identities", err=True)


def acting_admin(recovery_key_file: Path | None) -> tuple[S3ObjectStore, Signer, str]:
    """The store as the acting admin, who signs, and the trust root they pin.

    Raises:
        RefusedError: the configured credentials are not an admin's signing identity.
    """
    settings = state.settings()
    acting = settings.store()
    if recovery_key_file is not None:
        key = Path(recovery_key_file).read_text(encoding="utf-8").strip()
        public_key_of(key)  # a malformed key is refused before anything is written
        signer = Signer("recovery", "admin", key)
    elif acting.signing_key is None or acting.role != "admin":
        raise RefusedError(
            "only an admin changes the keyring: point credentials_file at an admin's credentials file "
            "(or give --recovery-key-file)"
        )
    else:
        signer = Signer(acting.actor, acting.role, acting.signing_key)
    if not acting.trust_root:
        raise ConfigError(
            "trust_root: unknown; set it (printed by `tailor user init`) or use an admin's credentials file"
        )
    return S3ObjectStore(acting), signer, acting.trust_root
