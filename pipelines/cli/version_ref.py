"""One way to name an adapter version on every command: ``NAME VERSION``, ``NAME@VERSION`` or ``NAME:VERSION``,
where VERSION is a version id (v1, v2, …) or an alias (production, staging) that names the version it points at."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import typer

from registry.errors import ConfigError, NotFoundError
from registry.governance import RegistryRules
from registry.manifest import is_version

if TYPE_CHECKING:
    from registry.registry import Registry

ALIASES = RegistryRules().aliases
FORMS = f"NAME VERSION, NAME@VERSION or NAME:VERSION (VERSION: v1, v2, … or an alias: {', '.join(ALIASES)})"
_SEPARATORS = ("@", ":")
# The VERSION argument of every NAME VERSION command: optional, since NAME@VERSION says both in one word.
VERSION = typer.Argument(
    None, help=f"v1, v2, … or an alias ({', '.join(ALIASES)}); or write NAME@VERSION", show_default=False
)


@dataclass(frozen=True)
class VersionRef:
    """An adapter name and a version id or alias, as the user wrote them."""

    name: str
    ref: str

    @property
    def is_alias(self) -> bool:
        return not is_version(self.ref)

    def resolved(self, open_registry: Callable[[], Registry]) -> tuple[str, str]:
        """(name, version id): ``ref`` itself, or the version the alias points at now (only then is the
        registry opened, so a bad form is refused before the store is reached).

        Raises:
            NotFoundError: the alias is not set for this name.
        """
        if not self.is_alias:
            return self.name, self.ref
        version = open_registry().state(self.name).aliases.get(self.ref)
        if version is None:
            raise NotFoundError(f"'{self.name}' has no {self.ref} alias set: give a version (v1, v2, …)")
        return self.name, version


def split_ref(value: str) -> VersionRef | None:
    """``NAME@VERSION`` / ``NAME:VERSION`` (or an alias) → its parts; a value with neither separator → None.

    Raises:
        ConfigError: a separator is there but a part is empty or VERSION is neither a version nor an alias.
    """
    for separator in _SEPARATORS:
        name, found, ref = value.partition(separator)
        if found:
            return _checked(name, ref, value)
    return None


def parse_ref(name: str, version: str | None = None) -> VersionRef:
    """The version a command's NAME [VERSION] arguments name, in any of the accepted forms (``FORMS``).

    Raises:
        ConfigError: the words do not form one of ``FORMS`` (the message lists them).
    """
    joined = split_ref(name)
    if joined is not None and version is not None:
        raise ConfigError(f"{name!r} already names a version, and {version!r} was given too: use one of {FORMS}")
    if joined is not None:
        return joined
    if version is None:
        raise ConfigError(f"{name!r} names no version: use one of {FORMS}")
    return _checked(name, version, f"{name} {version}")


def _checked(name: str, ref: str, written: str) -> VersionRef:
    if not name or not (is_version(ref) or ref in ALIASES):
        raise ConfigError(f"{written!r} is not a version reference: use one of {FORMS}")
    return VersionRef(name, ref)
