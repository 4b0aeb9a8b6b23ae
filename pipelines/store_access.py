"""Which store keys, role and actor a command acts with: the credential resolution behind ``Settings.store``.

Explicit keys, a person's credentials file (``tailor user add``) and the embedded store's identities
are checked against each other here, so the audit log never records a role or a person the keys do
not belong to. A mixin of ``Settings``: it reads the settings' fields and owns none.
"""

from __future__ import annotations

import getpass
import os

from pipelines.servers.seaweedfs_identities import read_identities
from registry.errors import ConfigError
from registry.people import Credentials, is_credentials_file, read_credentials
from registry.settings import Role, StoreSettings


class StoreAccess:
    """``Settings.store`` and the checks behind it."""

    def store(self, role: Role | None = None, person: Credentials | None = None) -> StoreSettings:
        """The store settings for ``role`` (default: the configured one), credentials resolved; with
        ``person`` (signed in to the console), theirs.

        Explicit keys win; else the role's identity in the credentials file (by default the
        embedded store's identities file).

        Raises:
            ConfigError: no credentials can be found for the role.
        """
        if person is not None:
            return self._person_store(person, person.role, f"{person.name}'s console account")
        role = role or self.role
        token = None
        if self.access_key is None and self.credentials_file is not None and is_credentials_file(self.credentials_file):
            return self._person_store(read_credentials(self.credentials_file), role, str(self.credentials_file))
        if self.access_key is not None and self.secret_key is not None and role == self.role:
            access, secret, token = self.access_key, self.secret_key, self.session_token
            self._require_keys_of_role(access, role)
        else:
            creds_file = self.credentials_file or self.embedded_store().identities_file
            if self.endpoint and self.credentials_file is None and not creds_file.exists():
                raise ConfigError(
                    f"no keys for {self.endpoint}: give access_key and secret_key (TAILOR_ACCESS_KEY, "
                    "TAILOR_SECRET_KEY) or a credentials_file; the embedded store's identities "
                    f"({creds_file}) do not exist here"
                )
            creds = read_identities(creds_file)
            if role not in creds:
                raise ConfigError(f"role: no identity named '{role}' in credentials_file {creds_file}")
            access, secret = creds[role]
        return StoreSettings(
            endpoint=self.endpoint or self.embedded_store().endpoint,
            bucket=self.bucket,
            access_key=access,
            secret_key=secret,
            session_token=token,
            ca_bundle=str(self.ca_bundle) if self.ca_bundle else None,
            role=role,
            actor=self.actor or _os_user(),
            region=self.region,
            addressing_style=self.addressing_style,
            object_lock_mode=None if self.object_lock_mode == "NONE" else self.object_lock_mode,
            object_lock_days=self.object_lock_days,
            trust_root=self.trust_root,
        )

    def _person_store(self, person: Credentials, role: Role, source: str) -> StoreSettings:
        """The store settings of ``person`` (from ``source``: the configured credentials file, or the
        console account they signed in with): the actor and role are theirs, and a setting that
        claims another is refused (the log records the signer). Refusals name ``source``, where
        the person's keys came from, never another file.

        Raises:
            ConfigError: ``actor`` or ``role`` names someone or something else.
        """
        if self.actor and self.actor != person.name:
            raise ConfigError(
                f"actor: TAILOR_ACTOR is {self.actor!r} but {source} belongs to "
                f"{person.name!r}: the audit log records who signs; unset TAILOR_ACTOR, or use "
                f"{self.actor}'s own credentials"
            )
        if role != person.role and ("role" in self.model_fields_set or role != self.role):
            raise ConfigError(f"role: {person.name} acts as '{person.role}' ({source}), not '{role}'")
        if self.bucket != person.bucket:
            raise ConfigError(f"bucket: {source} is for bucket '{person.bucket}', not '{self.bucket}'")
        return StoreSettings(
            endpoint=self.endpoint or self.embedded_store().endpoint,
            bucket=self.bucket,
            access_key=person.access_key,
            secret_key=person.secret_key,
            role=person.role,
            actor=person.name,
            ca_bundle=str(self.ca_bundle) if self.ca_bundle else None,
            region=self.region,
            addressing_style=self.addressing_style,
            object_lock_mode=None if self.object_lock_mode == "NONE" else self.object_lock_mode,
            object_lock_days=self.object_lock_days,
            signing_key=person.signing_key,
            trust_root=self.trust_root or person.trust_root,
        )

    def _require_keys_of_role(self, access_key: str, role: Role) -> None:
        """Refuse keys that the known identities file gives to another role: the audit log would
        record the role claimed, not the one the keys hold. Keys it does not list are not judged.

        Raises:
            ConfigError: the access key belongs to another role's identity.
        """
        # The embedded store's identities judge keys even with an endpoint set: its own URL given as
        # TAILOR_ENDPOINT must not switch the check off (review F4).
        known = self.credentials_file or self.embedded_store().identities_file
        if known is None or not known.is_file():
            return
        owner = next((name for name, (key, _) in read_identities(known).items() if key == access_key), None)
        if owner is not None and owner != role:
            raise ConfigError(
                f"access_key: it belongs to the '{owner}' identity in {known}, but role is '{role}'; "
                f"act as '{owner}', or use the '{role}' identity's keys"
            )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"
