"""Options whose value is one of a fixed set: `--help` shows them as [a|b] and the shell completes them."""

from __future__ import annotations

from typing import Literal

from registry.governance import RegistryRules
from registry.settings import Role

Alias = Literal[RegistryRules().aliases]  # type: ignore[valid-type]  # the registry's aliases, one source
Device = Literal["auto", "cpu", "cuda"]

__all__ = ["Alias", "Device", "Role"]
