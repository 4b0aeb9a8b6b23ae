"""The adapter registry, read side: versions proven against their manifests, aliases as the log's fold.

Where each thing lives on the bucket: ``registry.layout``.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from registry.adapter_folder import GATE_DECISION_FILE, MANIFEST_FILE, same_base
from registry.audit.checkpoints import Checkpoints
from registry.audit.events import AuditEvent, parse_time
from registry.audit.log import AuditLog
from registry.audit.state import AliasState, fold
from registry.errors import ConfigError, IntegrityError, NotFoundError, RefusedError
from registry.event_judge import EventJudge
from registry.event_time import utc_now
from registry.files import errors_named
from registry.fingerprint import BaseModelFingerprint
from registry.gate_record import judged_gate, require_gate_as_recorded
from registry.gate_summary import GateSummary
from registry.governance import RegistryRules, actor_problem, production_moves_to_review
from registry.key_log import KeyLog
from registry.keyring import KEYS_PREFIX, Keyring
from registry.layout import file_key, no_audit_log, versions_prefix
from registry.manifest import Manifest, gate_binding_problem, is_version, validate_name, version_number
from registry.object_store import ObjectStore, rewritten_keys, sha256_hex
from registry.settings import StoreSettings
from registry.signing import Signer

_FETCH_THREADS = 8


@dataclass(frozen=True)
class VerifyResult:
    """What `audit verify` proved: the whole chain, and every manifest against its register event."""

    name: str
    events: int
    head_sha256: str
    aliases: dict[str, str]
    versions: list[str]
    incomplete: list[str]  # registered in the log, but the upload never finished (no manifest)
    to_review: list[str]  # production moves that the rules of the day may have allowed, or a client skipped
    signed: int = 0  # events whose signature and rules were checked; the rest are unsigned legacy
    keyring: list[str] = field(default_factory=list)  # every key change, for a person to review


@dataclass(frozen=True)
class ListedVersion:
    """One version as `tailor list` shows it: its checked manifest, or why it failed the check."""

    version: str
    manifest: Manifest | None
    problem: str | None = None


class RegistryReader:
    """Read adapter versions and their audit log, each proven against its hashes: list, resolve,
    download, verify. ``Registry`` adds the changes; a server that only follows aliases needs this.

    Args:
        store: where everything lives.
        settings: the store settings; ``role`` and ``actor`` say who acts.
        base_model: the configured base model's fingerprint; needed to register and to roll back.
        rules: governance rules.
        cache_dir: where folded alias state may be cached between processes (optional).
    """

    def __init__(
        self,
        store: ObjectStore,
        settings: StoreSettings,
        *,
        base_model: BaseModelFingerprint | None = None,
        rules: RegistryRules = RegistryRules(),
        cache_dir: Path | None = None,
    ):
        self.store = store
        self.settings = settings
        if problem := actor_problem(settings.actor):
            raise ConfigError(problem)
        self.base_model = base_model
        self.rules = rules
        scope = hashlib.sha256(f"{settings.endpoint}|{settings.bucket}".encode()).hexdigest()[:16]
        self.keys = KeyLog(
            store,
            settings.trust_root,
            pin_file=Path(cache_dir) / "registry-cache" / f"trust-root-{scope}" if cache_dir else None,
        )
        signer = Signer(settings.actor, settings.role, settings.signing_key) if settings.signing_key else None
        self.log = AuditLog(
            store,
            actor=settings.actor,
            role=settings.role,
            cache_dir=cache_dir,
            signer=signer,
            judge=EventJudge(self.keys, rules),
            checkpoints=Checkpoints(store, self.keys, signer.key_id if signer else None),
            cache_scope=f"{settings.endpoint}|{settings.bucket}|{settings.trust_root}",
        )

    @property
    def signs(self) -> bool:
        """Whether this store's events are signed and judged (it has a keyring)."""
        return self.log.judge is not None and self.log.judge.signs()

    def keyring(self) -> Keyring | None:
        """The store's keyring, checked against the pinned trust root; None for a store without one."""
        return self.keys.keyring(refresh=True) if self.signs else None

    def state(self, name: str) -> AliasState:
        """The log's fold for ``name``: aliases, their history, registered and archived versions."""
        return self.log.state(validate_name(name))

    def head_seq(self, name: str) -> int:
        return self.log.head_seq(validate_name(name))

    def aliases(self, name: str) -> dict[str, str]:
        return dict(self.state(name).aliases)

    def events(self, name: str) -> list[AuditEvent]:
        return self.log.events(validate_name(name))

    def manifest(self, name: str, version: str) -> Manifest:
        """The manifest of ``version``, proven against its content hash and its register event.

        Raises:
            NotFoundError: no such version (or its upload never finished).
            IntegrityError: the manifest was modified, or deleted after the log promoted or archived it.
        """
        return self._checked_manifest(name, version, self.state(name))

    def versions(self, name: str) -> list[Manifest]:
        """Every complete version, oldest first (archived ones included; see ``state().archived``).

        Raises:
            IntegrityError: a manifest fails its check (the first one, named).
        """
        listed = self.listing(name)
        failed = next((item for item in listed if item.problem is not None), None)
        if failed is not None:
            raise IntegrityError(failed.problem)
        return [item.manifest for item in listed if item.manifest is not None]

    def listing(self, name: str) -> list[ListedVersion]:
        """Every complete version and every one the log promoted or archived, oldest first, each with
        its checked manifest or the reason it failed (a deleted manifest included).

        One tampered or unreadable manifest must not hide the healthy versions from a person
        looking into it, so a failed check is reported in its row instead of raised.
        """
        state = self.state(name)
        stored = {v for v in self.store.folders(versions_prefix(name)) if is_version(v)}
        found = sorted(stored | {v for v in state.versions if state.referenced(v)}, key=version_number)

        def checked(version: str) -> ListedVersion | None:
            try:
                return ListedVersion(version, self._checked_manifest(name, version, state))
            except IntegrityError as err:
                return ListedVersion(version, None, str(err))
            except NotFoundError:
                return None  # files without a manifest: an upload under way, or one that never finished

        with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:
            return [row for row in pool.map(checked, found) if row is not None]

    def resolve(self, name: str, alias: str = "production") -> Manifest | None:
        """The manifest ``alias`` points at, or None when the alias was never set."""
        state = self.state(name)
        version = state.aliases.get(alias)
        return self._checked_manifest(name, version, state) if version else None

    def download(self, name: str, ref: str, dest: Path) -> Manifest:
        """Write the files of a version (``v3``) or alias (``production``) into the new folder ``dest``.

        Every file is checked against its sha256 before anything appears at ``dest``.

        Raises:
            NotFoundError: unknown version or unset alias.
            IntegrityError: a stored file does not match its hash (named).
            RefusedError: ``dest`` exists and is not an empty folder.
        """
        state = self.state(name)
        version = ref if is_version(ref) else state.aliases.get(ref)
        if version is None:
            raise NotFoundError(f"'{name}' has no version {ref!r} and no alias of that name is set")
        manifest = self._checked_manifest(name, version, state)
        dest = Path(dest)
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise RefusedError(f"download destination {dest} exists and is not an empty folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.parent / f".{dest.name}.partial-{secrets.token_hex(4)}"
        try:
            with errors_named(dest):
                for rel, data in self.verified_files(manifest):
                    target = partial / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                partial.mkdir(parents=True, exist_ok=True)
                if dest.exists():
                    dest.rmdir()
                partial.rename(dest)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        return manifest

    def verify(self, name: str) -> VerifyResult:
        """Check the whole audit chain (signatures and rules replayed where the store signs), every
        manifest against its register event, every stored file against its manifest, and every
        event's gate against the manifest it names.

        Raises:
            IntegrityError: naming the first bad event, the modified manifest or the corrupted file.
            NotFoundError: ``name`` has no events at all (a typo would otherwise read as "verified").
        """
        state, events = self.log.verified_events(validate_name(name))
        if state.head_seq == 0:
            raise no_audit_log(name)
        self._require_unrewritten_keyring()

        def proven(version: str) -> Manifest | None:
            try:
                manifest = self._checked_manifest(name, version, state)
            except NotFoundError:
                return None
            for _ in self.verified_files(manifest):  # reading proves every file
                pass
            if problem := gate_binding_problem(manifest, required=False):
                raise IntegrityError(problem)
            return manifest

        versions = sorted(state.versions, key=version_number)
        with ThreadPoolExecutor(max_workers=_FETCH_THREADS) as pool:  # 500 manifests one by one took 4 s
            found = dict(zip(versions, pool.map(proven, versions)))
        judged: dict[str, GateSummary] = {}  # each version's verdict as it stood at each event
        for event in events:
            manifest = found.get(event.version)
            if event.action == "judge" and event.gate is not None:
                judged[event.version] = judged_gate(event)
            elif event.action != "register" and manifest is not None:
                require_gate_as_recorded(event, manifest, judged.get(event.version))
        complete, incomplete = [v for v in versions if found[v]], [v for v in versions if not found[v]]
        ring = self.keyring()
        return VerifyResult(
            name=name,
            events=state.head_seq,
            head_sha256=state.head_sha256,
            aliases=dict(state.aliases),
            versions=complete,
            incomplete=incomplete,
            to_review=production_moves_to_review(events)
            + [f"event {e.key_name}: {e.actor} cleared an object: {e.reason}" for e in events if e.action == "clear"]
            + (self.log.checkpoints.disagreements(name, events) if ring else []),
            signed=state.signed,
            keyring=list(ring.review) if ring else [],
        )

    def require_servable(self, name: str) -> None:
        """What a server checks before it serves ``name``: a signing store's trust root is pinned, and
        no event of its log and no key event was overwritten or deleted (a cache-less machine cannot
        otherwise see a deleted newest event).

        Raises:
            ConfigError: the store signs and no trust_root is configured.
            IntegrityError: naming each rewritten key.
        """
        if self.signs and not self.settings.trust_root:
            raise ConfigError(
                "trust_root: this store signs its events; a server pins the keyring it trusts: set "
                "trust_root (printed by `tailor user init`) or point credentials_file at its "
                "service's credentials"
            )
        self.log.require_unrewritten(validate_name(name))
        self._require_unrewritten_keyring()

    def _require_unrewritten_keyring(self) -> None:
        rewritten = rewritten_keys(self.store, KEYS_PREFIX)
        if rewritten:
            raise IntegrityError(
                "the keyring was rewritten: "
                + "; ".join(f"{key} has {what}" for key, what in sorted(rewritten.items()))
            )

    def alias_at(self, name: str, alias: str, when: str) -> tuple[str | None, AuditEvent | None]:
        """Which version held ``alias`` at ISO 8601 time ``when``, and the event that set it.

        Raises:
            RefusedError: ``when`` is not ISO 8601 or is in the future, or ``alias`` is not one of the
                rules' aliases.
            NotFoundError: ``name`` has no events at all (a typo would otherwise read as "unset").
        """
        self.require_alias(alias)
        try:
            moment = parse_time(when)
        except ValueError:
            raise RefusedError(
                f"time {when!r} is not ISO 8601 within the years 1 to 9999 (e.g. 2026-11-27T23:00:00Z)"
            ) from None
        events = self.events(name)
        if not events:
            raise no_audit_log(name)
        now = utc_now()
        # The log cannot know a later promotion or rollback: answering today's holder would read as a fact.
        # Events carry their writers' clocks, so the newest event's own time is always a fair question.
        if moment > max([parse_time(now)] + [parse_time(e.time) for e in events[-1:]]):
            raise RefusedError(
                f"time {when!r} is in the future (now {now}); `tailor list {name}` shows who holds {alias} now"
            )
        before = [e for e in events if parse_time(e.time) <= moment]
        state = fold(AliasState(name=name), before)
        setter = next((e for e in reversed(before) if e.alias == alias), None)
        return state.aliases.get(alias), setter

    def require_alias(self, alias: str) -> None:
        """Raises: RefusedError: ``alias`` is not one of the rules' aliases (a typo, not an unset alias)."""
        if alias not in self.rules.aliases:
            raise RefusedError(f"alias {alias!r} is not one of {', '.join(self.rules.aliases)}")

    def _require_same_base(self, manifest: Manifest) -> None:
        base = self.base_model
        if base is not None and not same_base(manifest.base_model, base):
            raise RefusedError(
                f"{manifest.name} {manifest.version} was trained on base model '{manifest.base_model.model_id}' "
                f"(weights {manifest.base_model.weights_sha256[:12]}) but the configured base is '{base.model_id}' "
                f"(weights {base.weights_sha256[:12]})"
            )

    def _checked_manifest(self, name: str, version: str, state: AliasState) -> Manifest:
        version_number(version)
        key = file_key(validate_name(name), version, MANIFEST_FILE)
        try:
            data = self.store.get(key)
        except NotFoundError:
            if state.referenced(version):
                holders = [a for a, v in state.aliases.items() if v == version]
                held = f"; {' and '.join(holders)} {'point' if len(holders) > 1 else 'points'} at it" if holders else ""
                raise IntegrityError(
                    f"{name} {version}: its manifest is missing although the log promoted or archived "
                    f"it, so it was deleted{held}; restore it from the bucket's object versions"
                ) from None
            if version in state.versions:
                raise NotFoundError(
                    f"{name} {version} was registered but its upload never finished (no manifest): "
                    "register the folder again; it gets the next version"
                ) from None
            raise NotFoundError(f"'{name}' has no version {version} (see `tailor list {name}`)") from None
        manifest = Manifest.from_json(data, key)
        if (manifest.name, manifest.version) != (name, version):
            raise IntegrityError(f"{key} describes {manifest.name} {manifest.version}, not {name} {version}")
        if state.versions.get(version) != manifest.content_sha256:
            raise IntegrityError(
                f"{key} does not match the content hash its register event recorded: the manifest was replaced"
            )
        return manifest

    def verified_files(self, manifest: Manifest, only: set[str] | None = None) -> Iterator[tuple[str, bytes]]:
        """Each stored file of ``manifest`` (or those in ``only``) with its bytes, size and sha256 checked.

        Raises:
            IntegrityError: naming the first file that does not match.
        """
        for rel, entry in manifest.files.items():
            if only is not None and rel not in only:
                continue
            try:
                # A larger object is refused before it is read: it cannot be the file the manifest names.
                data = self.store.get(file_key(manifest.name, manifest.version, rel), max_bytes=entry.size)
            except NotFoundError:
                raise IntegrityError(f"{manifest.name} {manifest.version}: stored file {rel} is missing") from None
            digest = sha256_hex(data)
            if len(data) != entry.size or digest != entry.sha256:
                raise IntegrityError(
                    f"{manifest.name} {manifest.version}: stored file {rel} is corrupted (sha256 {digest[:12]}…, "
                    f"manifest says {entry.sha256[:12]}…); refusing it"
                )
            yield rel, data

    def _prove_files(self, manifest: Manifest) -> bytes | None:
        """Read every stored file of ``manifest``; return the bytes of its gate decision, if it has one.

        Raises:
            IntegrityError: naming the first stored file that is missing or does not match.
        """
        decision = None
        for rel, data in self.verified_files(manifest):  # reading proves every file
            if rel == GATE_DECISION_FILE:
                decision = data
        return decision
