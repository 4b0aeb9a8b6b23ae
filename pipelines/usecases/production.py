"""What a candidate is compared with: a registered version or alias of its name, fetched with every
file's hash checked. `tailor evaluate` and the retrain flow both take this one path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.manifest import is_version

if TYPE_CHECKING:
    from registry.registry import Registry


@dataclass(frozen=True)
class Comparison:
    """The folder to compare with (None: nothing to compare with), how reports name it, and a note for the reader."""

    folder: Path | None
    ref: str | None
    note: str


def fetch_for_comparison(registry: "Registry", name: str, ref: str, dest: Path) -> Comparison:
    """Download ``name``'s ``ref`` (a version, or an alias such as ``production``) into ``dest``.

    An alias that holds no version yet gives nothing to compare with: the candidate is judged on
    the policy's floor alone, and the note says why (a new name, or one whose alias is unset).

    Raises:
        RefusedError: ``ref`` is neither a version nor a known alias (a misspelt alias would judge
            the candidate on the floor alone).
        NotFoundError, IntegrityError: no such version, or its files do not match their hashes.
    """
    if not is_version(ref):
        registry.require_alias(ref)
        if registry.resolve(name, ref) is None:
            # The first version of a name has nothing to be compared with; a misspelt version is an error.
            if registry.head_seq(name) == 0:  # a typo reads the same as a new name: say which it is
                return Comparison(
                    None,
                    None,
                    f"'{name}' has nothing registered yet (a new name, or a typo?): quality judged on the floor only",
                )
            return Comparison(None, None, f"{name} has no {ref} version yet: quality judged on the floor only")
    manifest = registry.download(name, ref, dest)
    return Comparison(
        dest, f"{manifest.name}:{manifest.version}", f"compared with {manifest.name}:{manifest.version} ({ref})"
    )
