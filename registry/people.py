"""People and services: each with store keys of their own and an Ed25519 signing key.

A person's credentials file (mode 0600, never in the bucket) holds their store keys, their
private signing key and the store's trust root; pointing the ``credentials_file`` setting at it
is how they act. Their public key and role are published in the keyring by an admin's signed
event (``registry.keyring``). On the embedded store, adding a person also creates their store
identity with the role's least permissions; on another S3 server the admin makes the keys with
that server's tools and registers them here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from registry.audit.log import AuditLog
from registry.errors import ConfigError, IntegrityError, RefusedError
from registry.event_time import utc_now
from registry.files import require_private_file, write_atomic
from registry.governance import RegistryRules
from registry.key_log import KeyLog
from registry.keyring import KeyEvent, Keyring, validate_person
from registry.object_store import ObjectStore
from registry.signed_rules import LEGACY_QUORUM, recorded_rules
from registry.signing import Signer, new_private_key, public_key_of

CREDENTIALS_FORMAT = "tailor-credentials-1"
KEY_FORMAT = "tailor-signing-key-1"


@dataclass(frozen=True)
class Credentials:
    """What one person or service needs to act: store keys, signing key, and the trust root."""

    name: str
    role: str
    kind: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    signing_key: str = field(repr=False)
    trust_root: str
    bucket: str
    format: str = CREDENTIALS_FORMAT


def is_credentials_file(path: Path) -> bool:
    """Whether ``path`` is a person's credentials file (else it is read as a SeaweedFS identities file).

    Only a regular file of at most 64 KiB is opened: /dev/zero would never end (a device or folder
    is then refused by name where it is read as an identities file).
    """
    path = Path(path)
    try:
        if not path.is_file() or path.stat().st_size > 64 * 1024:
            return False
        return json.loads(path.read_text(encoding="utf-8")).get("format") == CREDENTIALS_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _private_file(path: Path, what: str) -> Path:
    """Raises: ConfigError: missing, or readable by other users."""
    return require_private_file(path, what, "a private signing key")


def signing_key_path(credentials: Path) -> Path:
    """Where a person keeps the key `tailor user keygen` made them: beside their credentials file."""
    return Path(credentials).with_suffix(".key")


def read_credentials(path: Path) -> Credentials:
    """A credentials file; one an admin wrote for a key the person made (its ``signing_key`` empty)
    takes the key from the person's own key file beside it (``signing_key_path``).

    Raises: ConfigError: missing, readable by others, or not a credentials file (naming the field).
    """
    path = _private_file(path, "credentials_file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        creds = Credentials(**raw)
        if not all(isinstance(v, str) for v in asdict(creds).values()):
            raise TypeError("every field must be text")
        if not creds.signing_key:
            key_file = _private_file(signing_key_path(path), "signing key file")
            creds = replace(creds, signing_key=read_signing_key(key_file))
        public_key_of(creds.signing_key)
    except (OSError, ValueError, TypeError) as err:
        raise ConfigError(f"credentials_file: {path} is not a Tailor credentials file: {err}") from None
    return creds


def write_signing_key(path: Path, private: str) -> Path:
    """Write a person's own private key file (0600). Raises: RefusedError: it exists."""
    path = Path(path)
    if path.exists():
        raise RefusedError(f"{path} exists: a signing key file is never overwritten (give another --out)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps({"format": KEY_FORMAT, "signing_key": private}), private=True)


def read_signing_key(path: Path) -> str:
    """Raises: ValueError: not a key file `tailor user keygen` wrote."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or raw.get("format") != KEY_FORMAT or not isinstance(raw.get("signing_key"), str):
        raise ValueError(f"{path} is not a signing key file written by `tailor user keygen`")
    return raw["signing_key"]


def write_credentials(path: Path, creds: Credentials) -> Path:
    """Write a new credentials file, readable by its owner only. Raises: RefusedError: it exists."""
    path = Path(path)
    if path.exists():
        raise RefusedError(f"{path} exists: give another --out (a credentials file is never overwritten)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps(asdict(creds), indent=2), private=True)


@dataclass(frozen=True)
class Started:
    """What `tailor user init` made: the first admin, the recovery key (shown once), the trust root."""

    admin: Credentials
    recovery_key: str = field(repr=False)
    trust_root: str
    legacy: dict[str, list]


def init_keyring(
    store: ObjectStore,
    log: AuditLog,
    admin: str,
    *,
    access_key: str,
    secret_key: str,
    bucket: str,
    rules: RegistryRules = RegistryRules(),
    quorum: int = LEGACY_QUORUM,
) -> Started:
    """Start the keyring of a store: the first admin, an offline recovery key, and the ``quorum`` and
    ``rules`` every reader replays from then on (``registry.signed_rules``), whatever its local config.

    Every existing audit log is verified and its head sealed in the first event, so its events
    read as "unsigned legacy" from then on and nothing unsigned can follow them.

    Raises:
        RefusedError: the store has a keyring already, or the quorum or rules are not valid.
        IntegrityError: an existing audit log does not verify (named): repair it first.
    """
    validate_person(admin)
    keys = KeyLog(store)
    if keys.exists():
        raise RefusedError("this store has a keyring already: an admin adds people with `tailor user add`")
    legacy = {}
    for name in store.folders("audit/"):
        try:
            state = log.verify(name)
        except IntegrityError as err:
            raise IntegrityError(f"cannot seal the existing audit log of '{name}' as legacy: {err}") from None
        legacy[name] = [state.head_seq, state.head_sha256]
    private, recovery = new_private_key(), new_private_key()
    signer = Signer(admin, "admin", private)
    event = keys.append(
        signer,
        lambda _: KeyEvent(
            action="init",
            person=admin,
            role="admin",
            public_key=public_key_of(private),
            recovery_public_key=public_key_of(recovery),
            legacy_heads=legacy,
            rules=recorded_rules(rules, quorum),
            reason="keyring started",
        ),
        utc_now,
    )
    creds = Credentials(
        name=admin,
        role="admin",
        kind="person",
        access_key=access_key,
        secret_key=secret_key,
        signing_key=private,
        trust_root=event.sha256,
        bucket=bucket,
    )
    return Started(admin=creds, recovery_key=recovery, trust_root=event.sha256, legacy=legacy)


def publish(
    store: ObjectStore,
    trust_root: str,
    signer: Signer,
    action: str,
    person: str,
    *,
    role: str = "",
    kind: str = "person",
    public_key: str | None = None,
    confirms: str | None = None,
    reason: str = "",
) -> KeyEvent:
    """Sign and append one key event (add, rotate, disable, confirm) as ``signer``.

    Raises:
        RefusedError: the event breaks a keyring rule (not written).
        IntegrityError: the stored keyring does not verify, or does not start at ``trust_root``.
    """
    keys = KeyLog(store, trust_root)

    def make(ring: Keyring) -> KeyEvent:
        return KeyEvent(
            action=action, person=person, role=role, kind=kind, public_key=public_key, confirms=confirms, reason=reason
        )

    return keys.append(signer, make, utc_now)


@dataclass(frozen=True)
class PersonRow:
    name: str
    role: str
    kind: str
    key_id: str
    status: str  # active | waiting for confirmation | disabled


def people(ring: Keyring) -> list[PersonRow]:
    rows = []
    for name, kid in sorted(ring.people.items()):
        record = ring.keys[kid]
        status = (
            "disabled"
            if name in ring.disabled
            else "waiting for confirmation"
            if record.valid_from is None
            else "active"
        )
        rows.append(PersonRow(name=name, role=record.role, kind=record.kind, key_id=kid, status=status))
    return rows


def credentials_path(home: Path, name: str) -> Path:
    return Path(home) / "credentials" / f"{name}.json"
