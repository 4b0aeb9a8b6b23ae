"""A registered base model's names, bucket keys and manifest record, and what a base folder may hold.

``registry.base_models`` adds, fetches and verifies bases with these; the CLI and the audit commands
use the names alone."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from registry.adapter_folder import PICKLE_SUFFIXES, FileEntry
from registry.canonical import canonical_json, canonical_sha256
from registry.errors import IntegrityError, RefusedError
from registry.fingerprint import BaseModelFingerprint
from registry.manifest import safe_relpath

PREFIX = "adapters/_bases/"
LOG_PREFIX = "_base."
VERSION = "v1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")  # BCP 47 primary tag, optional region/script
MAX_FILES = 200


def is_base_name(value: str) -> bool:
    """Whether ``value`` could name a registered base (a path such as ``./m`` or ``/x/m`` cannot)."""
    return bool(_NAME.fullmatch(value or "")) and ".." not in value


def validate_base_name(name: str) -> str:
    """Raises: RefusedError: ``name`` is not 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit."""
    if not is_base_name(name):
        raise RefusedError(
            f"base model name {name!r} is refused: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. ruri-v3-30m)"
        )
    return name


def parse_languages(value: str) -> tuple[str, ...]:
    """``"ja,en"`` → ``("ja", "en")``.

    Raises:
        RefusedError: an empty item or one that is not a language tag (ja, en, zh-Hant), named.
    """
    items = tuple(item.strip() for item in value.split(",")) if value.strip() else ()
    bad = [item for item in items if not _LANGUAGE.fullmatch(item)]
    if bad:
        raise RefusedError(
            f"--languages {value!r}: {', '.join(repr(b) for b in bad)} is not a language tag; give "
            "comma-separated tags such as ja,en"
        )
    return items


def blob_key(sha256: str) -> str:
    return f"{PREFIX}blobs/{sha256}"


def manifest_key(name: str) -> str:
    return f"{PREFIX}{name}/manifest.json"


def pending_key(name: str, content_sha256: str) -> str:
    return f"{PREFIX}{name}/pending/{content_sha256}.json"


def log_name(name: str) -> str:
    return LOG_PREFIX + name


def audited_base(value: str) -> str | None:
    """The registered base a `tailor audit` NAME means, or None where it names an adapter.

    Both spellings are taken: ``base:NAME``, what a person types, and ``_base.NAME``, the name the
    log has on the bucket and in every message about it, so a name copied from an error works.
    """
    for prefix in ("base:", LOG_PREFIX):
        if value.startswith(prefix):
            return validate_base_name(value[len(prefix) :])
    return None


@dataclass(frozen=True)
class BaseManifest:
    """What a registered base model is; ``content_sha256`` is what its register event recorded."""

    name: str
    model_id: str
    files: dict[str, FileEntry]
    fingerprint: BaseModelFingerprint
    license: str = ""
    languages: tuple[str, ...] = ()
    source: str = ""
    created_by: str = ""
    created_at: str = ""
    content_sha256: str = field(default="", compare=False)

    def _body(self) -> dict:
        data = asdict(self)
        data.pop("content_sha256")
        return data

    def sealed(self) -> "BaseManifest":
        return BaseManifest(**{**self.__dict__, "content_sha256": canonical_sha256(self._body())})

    def to_json(self) -> bytes:
        return canonical_json({**self._body(), "content_sha256": self.content_sha256})

    @classmethod
    def from_json(cls, data: bytes, where: str) -> "BaseManifest":
        """Raises: IntegrityError: not a base manifest, or its content does not match its hash."""
        try:
            raw = json.loads(data)
            manifest = cls(
                **{
                    **raw,
                    "files": {rel: FileEntry(**f) for rel, f in raw["files"].items()},
                    "fingerprint": BaseModelFingerprint(**raw["fingerprint"]),
                    "languages": tuple(raw["languages"]),
                }
            )
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise IntegrityError(f"{where} is not a base model manifest: {err}") from None
        if canonical_sha256(manifest._body()) != manifest.content_sha256:
            raise IntegrityError(f"{where} was modified: its content does not match its sha256")
        for rel in manifest.files:
            safe_relpath(rel)  # it becomes a path under the cache folder
        return manifest


def folder_files(folder: Path) -> list[Path]:
    """Every file a base folder would upload, after refusing what must never be loaded.

    Raises:
        RefusedError: pickle weights or Python files (remote code) anywhere in it, links, or too many files.
    """
    files = sorted(p for p in folder.rglob("*") if not p.is_dir() and ".cache" not in p.relative_to(folder).parts)
    pickles = [p.relative_to(folder).as_posix() for p in files if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise RefusedError(
            f"base model folder {folder} holds pickle files ({', '.join(pickles)}): a registered base "
            "holds safetensors weights only; delete them (keep model.safetensors)"
        )
    code = [p.relative_to(folder).as_posix() for p in files if p.suffix == ".py"]
    if code:
        raise RefusedError(
            f"base model folder {folder} holds Python files ({', '.join(code)}): that is remote code, "
            "which Tailor never runs; use a model transformers supports without it"
        )
    links = [p.relative_to(folder).as_posix() for p in files if p.is_symlink()]
    if links:
        raise RefusedError(
            f"base model folder {folder} holds links ({', '.join(links)}): copy the files they "
            "point at into the folder (a Hugging Face cache snapshot links into blobs/)"
        )
    if len(files) > MAX_FILES:
        raise RefusedError(f"base model folder {folder} holds {len(files)} files; a model folder has a handful")
    return files
