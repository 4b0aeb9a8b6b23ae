"""Console sign-in by passphrase: each person's passphrase, stored hashed, also seals their credentials.

`tailor user passwd` (run by the person, with their credentials file configured) writes
``<home>/console/people/NAME.json`` (0600): the scrypt parameters and salt, a verifier (the first
half of scrypt's output) and the person's credentials file, signing key included, encrypted with
AES-GCM under the second half. The console therefore holds no key it could sign with while nobody
is signed in: the passphrase that proves who someone is is also what unlocks their signing key,
and a stolen account file still needs the passphrase (scrypt at 32 MiB per guess).

Any other sign-in (the company's LDAP or OIDC) is one more ``Authenticator``: it proves who the
person is and must then hand over their ``Credentials`` from somewhere they alone unlock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from registry.errors import ConfigError, RefusedError
from registry.files import write_atomic
from registry.keyring import validate_person
from registry.people import Credentials

ACCOUNT_FORMAT = "tailor-console-account-1"
MIN_PASSPHRASE_CHARS = 12
MAX_PASSPHRASE_CHARS = 1024  # scrypt reads all of it; a megabyte "passphrase" must not cost a sign-in that much
# RFC 7914's interactive setting: ~0.1 s and 32 MiB per try on one core.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1


class SignInRefused(RefusedError):
    """Unknown name or wrong passphrase: the same words for both, so a guess learns nothing about names."""


class Authenticator(Protocol):
    """Who may sign in: proves a person and returns their credentials (signing key included)."""

    def sign_in(self, name: str, secret: str) -> Credentials: ...


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    """The verifier and the sealing key: two halves of one scrypt output, neither telling the other."""
    out = hashlib.scrypt(passphrase.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * 2, dklen=64)
    return out[:32], out[32:]


def _check_passphrase(passphrase: str) -> None:
    """Raises: RefusedError: too short or too long."""
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise RefusedError(
            f"a console passphrase has at least {MIN_PASSPHRASE_CHARS} characters "
            f"(this one has {len(passphrase)}); a few words make a good one"
        )
    if len(passphrase) > MAX_PASSPHRASE_CHARS:
        raise RefusedError(f"a console passphrase has at most {MAX_PASSPHRASE_CHARS} characters")


def account_path(folder: Path, name: str) -> Path:
    return Path(folder) / f"{validate_person(name)}.json"


def write_account(folder: Path, person: Credentials, passphrase: str) -> Path:
    """Seal ``person``'s credentials under ``passphrase`` (replacing their earlier account file).

    Raises:
        RefusedError: the passphrase is too short or too long.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    _check_passphrase(passphrase)
    salt, nonce = os.urandom(16), os.urandom(12)
    verifier, key = _derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    sealed = AESGCM(key).encrypt(nonce, json.dumps(asdict(person)).encode(), person.name.encode())
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    record = {
        "format": ACCOUNT_FORMAT,
        "name": person.name,
        "role": person.role,
        "scrypt": {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": b64(salt)},
        "verifier": b64(verifier),
        "nonce": b64(nonce),
        "sealed": b64(sealed),
    }
    path = account_path(folder, person.name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return write_atomic(path, json.dumps(record, indent=2), private=True)


class PassphraseAccounts:
    """The account files `tailor user passwd` writes, in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.json")) if self.folder.is_dir() else []

    def sign_in(self, name: str, secret: str) -> Credentials:
        """The person's credentials, unsealed by their passphrase.

        Raises:
            SignInRefused: no account of that name, or the passphrase does not match.
            ConfigError: the account file exists but is damaged (named, for an admin to replace).
        """
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        refused = SignInRefused("unknown name or wrong passphrase")
        try:
            path = account_path(self.folder, name)
        except (RefusedError, ConfigError):
            raise refused from None
        if not path.is_file() or len(secret) > MAX_PASSPHRASE_CHARS:
            raise refused
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            if raw.get("format") != ACCOUNT_FORMAT or raw.get("name") != name:
                raise ValueError("not an account file of this name")
            kdf = raw["scrypt"]
            verifier, key = _derive(secret, base64.b64decode(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
            stored = base64.b64decode(raw["verifier"])
            nonce, sealed = base64.b64decode(raw["nonce"]), base64.b64decode(raw["sealed"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ConfigError(f"console account file {path} is damaged ({err}): `tailor user passwd` writes it again")
        if not hmac.compare_digest(verifier, stored):
            raise refused
        try:
            person = Credentials(**json.loads(AESGCM(key).decrypt(nonce, sealed, name.encode())))
        except (InvalidTag, ValueError, TypeError) as err:
            raise ConfigError(
                f"console account file {path} does not open with its own verifier ({err}): "
                "it was altered; `tailor user passwd` writes it again"
            ) from None
        return person
