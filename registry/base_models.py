"""Base models as registered artifacts: content-addressed, create-only, each added by a signed event.

Layout on the bucket (under ``adapters/``, whose write and retention permissions the trainer and
admin identities already hold; an adapter name cannot start with ``_``, so nothing collides)::

    adapters/_bases/<name>/pending/<content_sha256>.json   the manifest to be, written first
    adapters/_bases/blobs/<sha256>          every file, keyed by its content hash
    audit/_base.<name>/000000000001.json    its ``register`` event (``v1``), signed where the store signs
    adapters/_bases/<name>/manifest.json    written last: a base exists iff this exists

An add stopped after its event (a kill, the store going away) is finished by the same add run again:
the pending manifest is the one the event recorded, so the rerun proves it against the event and its
files against the folder, uploads what is missing (create-only, content-addressed: what is there
is those bytes) and writes the manifest. Another folder under that name is refused.

A base is one ``register`` event in a log of its own, so the audit machinery already judges who may
add one (the ``register`` writers: admin and trainer, who bring the models they train on), refuses
a second add (``v1`` was registered before), and proves the manifest against the hash the event
recorded. Loading checks (config, tokenizer, weights) belong to the caller: the registry never
imports ``pipelines``.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from registry.adapter_folder import FileEntry
from registry.audit.events import AuditEvent
from registry.base_manifest import (
    PREFIX,
    VERSION,
    BaseManifest,
    blob_key,
    folder_files,
    log_name,
    manifest_key,
    pending_key,
    validate_base_name,
)
from registry.errors import AlreadyExistsError, IntegrityError, NotFoundError
from registry.event_time import utc_now
from registry.files import errors_named
from registry.fingerprint import base_model_fingerprint, file_sha256
from registry.object_store import put_kept, sha256_hex
from registry.reading import VerifyResult
from registry.registry import Registry


class BaseModels:
    """Add, list and fetch registered base models through ``registry`` (its store, role and audit log)."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.store = registry.store

    def add(
        self,
        folder: Path,
        name: str,
        *,
        model_id: str,
        license: str = "",
        languages: tuple[str, ...] = (),
        source: str = "",
    ) -> BaseManifest:
        """Upload ``folder`` as base ``name``: its manifest to be, every file under its sha256, the
        event, then the manifest.

        Adding the same bytes again returns the registered manifest; nothing new is written. Adding
        them again after an add that stopped before its manifest finishes that add.

        Raises:
            RefusedError: role, name or folder refused.
            AlreadyExistsError: ``name`` is registered (or its add was started) with other bytes.
            NotFoundError: an add under ``name`` stopped unfinished and left nothing to finish it from.
            IntegrityError: the pending manifest does not match the hash its event recorded.
        """
        self.registry.require_role("register")
        validate_base_name(name)
        self.registry.log.require_signer()
        folder = Path(folder)
        files = folder_files(folder)
        fingerprint = base_model_fingerprint(folder, model_id)
        entries = {p.relative_to(folder).as_posix(): FileEntry(file_sha256(p), p.stat().st_size) for p in files}
        recorded = self.registry.log.state(log_name(name)).versions.get(VERSION)
        existing = self._registered(name) if recorded is None or self.store.exists(manifest_key(name)) else None
        if existing is not None:
            if existing.files == entries:
                return existing
            raise AlreadyExistsError(
                f"base model '{name}' is registered already with other files (weights "
                f"{existing.fingerprint.weights_sha256[:12]}); a base never changes: add "
                "this folder under a new name"
            )
        if recorded is not None:
            manifest = self._pending(name, recorded)
            if manifest.files != entries:
                raise AlreadyExistsError(
                    f"base model '{name}' was added from other files (weights "
                    f"{manifest.fingerprint.weights_sha256[:12]}) and that add never finished: run it "
                    "again with the folder it was started from to finish it, or add this folder under a new name"
                )
        else:
            manifest = BaseManifest(
                name=name,
                model_id=model_id,
                files=entries,
                fingerprint=fingerprint,
                license=license,
                languages=languages,
                source=source,
                created_by=self.registry.settings.actor,
                created_at=utc_now(),
            ).sealed()
            put_kept(self.store, pending_key(name, manifest.content_sha256), manifest.to_json())
        self._upload(folder, entries)
        if recorded is None:
            self.registry.log.append(
                log_name(name),
                lambda state: AuditEvent(
                    action="register",
                    name=log_name(name),
                    version=VERSION,
                    actor=self.registry.settings.actor,
                    role=self.registry.settings.role,
                    reason=f"base model {name} added",
                    content_sha256=manifest.content_sha256,
                ),
            )
        try:
            put_kept(self.store, manifest_key(name), manifest.to_json())
        except AlreadyExistsError:
            pass  # a rerun of this same add finished it meanwhile: proven below
        return self._registered(name)

    def _upload(self, folder: Path, entries: dict[str, FileEntry]) -> None:
        """Store every file of ``folder`` not stored yet, under its sha256."""
        known = {o.key for o in self.store.list(f"{PREFIX}blobs/")}
        for rel, entry in entries.items():
            if blob_key(entry.sha256) in known:
                continue  # content-addressed: a stored blob is these bytes, proven again on every fetch
            data = (folder / rel).read_bytes()
            if sha256_hex(data) != entry.sha256:
                raise IntegrityError(f"{folder / rel} changed while it was being added: add it again")
            try:
                put_kept(self.store, blob_key(entry.sha256), data)
            except AlreadyExistsError:
                pass  # another add stored the same bytes meanwhile

    def _pending(self, name: str, recorded: str) -> BaseManifest:
        """The manifest an unfinished add of ``name`` recorded (``recorded``: its hash in the event)."""
        key = pending_key(name, recorded)
        try:
            data = self.store.get(key)
        except NotFoundError:
            # Adds before resumable ones wrote no pending manifest.
            raise NotFoundError(
                f"base model '{name}' was added but its upload never finished, and nothing it left can "
                "finish it: add the folder under a new name"
            ) from None
        manifest = BaseManifest.from_json(data, key)
        if manifest.name != name or manifest.content_sha256 != recorded:
            raise IntegrityError(f"{key} does not match the hash its audit event recorded: it was replaced")
        return manifest

    def list(self) -> list[BaseManifest]:
        """Every registered base, by name, each manifest proven against its register event.

        Raises:
            IntegrityError: a manifest fails its check (named).
        """
        names = sorted(n for n in self.store.folders(PREFIX) if n != "blobs")
        return [m for m in (self._registered(n) for n in names) if m is not None]

    def manifest(self, name: str) -> BaseManifest:
        """Raises: NotFoundError: no base of that name; IntegrityError: its manifest was modified."""
        found = self._registered(validate_base_name(name))
        if found is None:
            raise NotFoundError(
                f"no base model folder {name!r} and no registered base model of that name "
                "(`tailor base list` shows them; `tailor base add DIR --name NAME` adds one)"
            )
        return found

    def fetch(self, name: str, cache_root: Path) -> tuple[BaseManifest, Path]:
        """The folder of base ``name`` under ``cache_root``, every file checked against its sha256 on
        this call: a file that does not match (edited, truncated, missing) is fetched again.

        Raises:
            NotFoundError: no such base.
            IntegrityError: a stored file does not match its hash.
        """
        manifest = self.manifest(name)
        dest = Path(cache_root) / name / manifest.content_sha256[:16]
        if dest.is_dir() and all(_holds(dest / rel, entry) for rel, entry in manifest.files.items()):
            return manifest, dest
        partial = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
        try:
            with errors_named(dest):
                for rel, entry in manifest.files.items():
                    target = partial / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self._blob(name, rel, entry))
                shutil.rmtree(dest, ignore_errors=True)
                partial.rename(dest)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return manifest, dest

    def events(self, name: str) -> list[AuditEvent]:
        """The audit log of base ``name``, checked from its first event.

        Raises:
            NotFoundError: no base of that name was ever added.
            IntegrityError: naming the first bad event.
        """
        events = self.registry.log.events(log_name(validate_base_name(name)))
        if not events:
            raise _never_added(name)
        return events

    def verify(self, name: str) -> VerifyResult:
        """What `tailor audit verify` proves of an adapter, for base ``name``: its whole log (signatures
        and rules where the store signs), its manifest against the register event, every stored file
        against the manifest.

        Raises:
            NotFoundError: no base of that name was ever added.
            IntegrityError: naming the first bad event, the replaced manifest or the corrupted file.
        """
        state, _ = self.registry.log.verified_events(log_name(validate_base_name(name)))
        if state.head_seq == 0:
            raise _never_added(name)
        self.registry._require_unrewritten_keyring()  # noqa: SLF001 - the keyring check adapters' verify runs
        try:
            manifest = self._registered(name)
        except NotFoundError:  # added, but the upload never finished
            manifest = None
        for rel, entry in (manifest.files if manifest else {}).items():
            self._blob(name, rel, entry)
        ring = self.registry.keyring()
        return VerifyResult(
            name=log_name(name),
            events=state.head_seq,
            head_sha256=state.head_sha256,
            aliases={},
            versions=[VERSION] if manifest else [],
            incomplete=[] if manifest else [VERSION],
            to_review=[],
            signed=state.signed,
            keyring=list(ring.review) if ring else [],
        )

    def _blob(self, name: str, rel: str, entry: FileEntry) -> bytes:
        try:
            data = self.store.get(blob_key(entry.sha256), max_bytes=entry.size)
        except NotFoundError:
            raise IntegrityError(f"base model '{name}': stored file {rel} is missing") from None
        if len(data) != entry.size or sha256_hex(data) != entry.sha256:
            raise IntegrityError(f"base model '{name}': stored file {rel} is corrupted; refusing it")
        return data

    def _registered(self, name: str) -> BaseManifest | None:
        state = self.registry.log.state(log_name(name))
        key = manifest_key(name)
        try:
            data = self.store.get(key)
        except NotFoundError:
            if VERSION in state.versions:
                raise NotFoundError(
                    f"base model '{name}' was added but its upload never finished (no manifest): run the "
                    "same `tailor base add` again, with the folder it was added from, to finish it"
                ) from None
            return None
        manifest = BaseManifest.from_json(data, key)
        if manifest.name != name or state.versions.get(VERSION) != manifest.content_sha256:
            raise IntegrityError(f"{key} does not match the hash its audit event recorded: the manifest was replaced")
        return manifest


def _never_added(name: str) -> NotFoundError:
    return NotFoundError(f"no base model '{name}' was ever added (`tailor base list` shows those that were)")


def _holds(path: Path, entry: FileEntry) -> bool:
    return path.is_file() and path.stat().st_size == entry.size and file_sha256(path) == entry.sha256
