"""The adapter registry, write side: register, promote, judge, roll back, archive and clear.

Every rule (``registry.governance``) is judged here, whatever the store's identities allow, because
a role's S3 permissions cannot tell a staging promotion from a production one (both are audit events).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from registry.adapter_folder import MANIFEST_FILE, inspect_adapter_folder
from registry.audit.clearing import objects_to_clear
from registry.audit.events import AuditEvent
from registry.audit.state import AliasState
from registry.canonical import canonical_json
from registry.errors import AlreadyExistsError, ConfigError, IntegrityError, RefusedError
from registry.event_time import utc_now
from registry.gate_record import gate_fields, standing_gate
from registry.gate_summary import GateSummary
from registry.governance import (
    MAX_REASON_CHARS,
    breaks_four_eyes,
    gate_problem,
    override_problem,
    reason_problem,
    role_problem,
    stale_gate,
    trainer_archive_problem,
)
from registry.layout import file_key, versions_prefix
from registry.manifest import (
    Manifest,
    build_manifest,
    gate_binding_problem,
    is_version,
    recorded_against,
    validate_name,
    version_number,
)
from registry.object_store import put_kept, sha256_hex
from registry.reading import RegistryReader

MAX_CLAIM_GAP = 1000  # claims of registers that died before their event; more than this is not a crash


class Registry(RegistryReader):
    """Register, list, download, promote, roll back and archive adapter versions (see ``RegistryReader``)."""

    # ---- changing --------------------------------------------------------------------------------

    def register(self, adapter_dir: Path, name: str, *, reason: str = "") -> Manifest:
        """Upload an adapter folder as the next version of ``name``; nothing is written if it is refused.

        Raises:
            RefusedError: role, name or folder refused (every problem listed).
            NotFoundError: the folder does not exist.
            ConfigError: no base model fingerprint was configured.
        """
        self.require_role("register")
        self._require_reason(reason, "register", required=False)
        validate_name(name)
        if self.base_model is None:
            raise ConfigError("base_model: registering needs the configured base model's fingerprint")
        self.log.require_signer()
        folder = inspect_adapter_folder(Path(adapter_dir), self.base_model)
        version = self._claim_version(name)
        manifest = build_manifest(
            folder,
            name,
            version,
            created_by=self.settings.actor,
            created_role=self.settings.role,
            created_at=utc_now(),
            reason=reason,
        )
        if problem := gate_binding_problem(manifest, required=self.signs):
            raise RefusedError(f"refused adapter folder {folder.root}: {problem}")
        for rel, entry in manifest.files.items():
            data = (folder.root / rel).read_bytes()
            if sha256_hex(data) != entry.sha256:
                raise IntegrityError(f"{folder.root / rel} changed while it was being registered: register again")
            put_kept(self.store, file_key(name, version, rel), data)
        self.log.append(
            name,
            lambda state: AuditEvent(
                action="register",
                name=name,
                version=version,
                actor=self.settings.actor,
                role=self.settings.role,
                reason=reason,
                content_sha256=manifest.content_sha256,
                **gate_fields(manifest),
            ),
        )
        # Last: only now does the version exist for readers.
        put_kept(self.store, file_key(name, version, MANIFEST_FILE), manifest.to_json())
        return manifest

    def promote(self, name: str, version: str, to: str, *, reason: str, override: bool = False) -> AuditEvent:
        """Point alias ``to`` at ``version``.

        Production needs a complete, unarchived version on today's base model whose gate passed (a
        gate-less version only where ``rules.require_gate`` is off), promoted by someone other than
        who registered it (four-eyes rule). Only the roles in ``rules.override_roles`` may pass a
        failed, stale or missing gate, with ``override`` and a reason.

        Raises:
            RefusedError: the rule that refused, with what to do.
            NotFoundError: no such version.
            IntegrityError: its manifest or one of its stored files does not match its hash.
        """
        self.require_role("promote", alias=to)
        self._require_reason(reason, "promote")
        self.require_alias(to)
        if override and (problem := override_problem(self.settings.role, self.rules)):
            raise RefusedError(f"{problem}; you act as '{self.settings.role}'")
        manifest = self.manifest(name, version)
        self._require_same_base(manifest)
        decision = self._prove_files(manifest)  # an alias must never point at weights that cannot be served
        against = recorded_against(manifest, decision)
        gate = standing_gate(self.state(name), manifest)
        bypassed = False
        if to == self.rules.production_alias:
            if breaks_four_eyes(self.rules, to, manifest.created_by, self.settings.actor):
                raise RefusedError(
                    f"four-eyes rule: {self.settings.actor} registered {name} {version} and cannot also promote it "
                    f"to {to}; another person must"
                )
            label = f"{name} {version}"
            problem = gate_problem(
                label,
                name,
                gate,
                self.rules,
                judged_again=gate is not manifest.gate,
                binding_problem=gate_binding_problem(manifest, required=self.signs),
            )
            if problem is not None:
                if not override:
                    raise RefusedError(f"{problem}; only an approver may promote it, with --override and a reason")
                bypassed = True

        def make(state: AliasState) -> AuditEvent:
            if version in state.archived:
                raise RefusedError(f"{name} {version} is archived and cannot be promoted")
            current = state.aliases.get(to)
            if current == version:
                raise RefusedError(f"{to} already holds {name} {version}")
            stale = stale_gate(self.rules, to, current, gated=manifest.gate is not None, against=against, name=name)
            if stale and not override:
                # Judged here, against the log as the event lands: production may have moved since the gate ran.
                raise RefusedError(
                    f"{name} {version}'s gate compared it with {against or 'nothing'}, but {to} holds {name} "
                    f"{current}: evaluate its folder against {to} (`tailor evaluate --adapter FOLDER --name {name}`) "
                    "and register it again (a version's evidence never changes), or an approver may promote it with "
                    "--override and a reason"
                )
            return AuditEvent(
                action="promote",
                name=name,
                version=version,
                actor=self.settings.actor,
                role=self.settings.role,
                reason=reason,
                content_sha256=manifest.content_sha256,
                alias=to,
                alias_before=current,
                alias_after=version,
                override=bypassed or stale,
                **gate_fields(manifest, gate),
            )

        return self.log.append(name, make)

    def judge(self, name: str, version: str, gate: GateSummary, evidence: dict, *, reason: str) -> AuditEvent:
        """Record a new gate verdict for a registered version, with the evidence it rests on.

        Only a check that could not be judged before is measured again (load on a busy machine): the
        version's files and manifest stay as registered, and production reads the newest verdict.

        Raises:
            RefusedError: role refused, no reason, the version is archived, ``gate`` was decided under
                another policy than the configured one, or it changes more than the checks its verdict
                as it stands left unjudged (the audit fold checks this for every reader too).
            NotFoundError: no such version.
        """
        self.require_role("judge")
        self._require_reason(reason, "judge")
        manifest = self.manifest(name, version)
        wanted = self.rules.policy_sha256
        if wanted is not None and gate.policy_sha256 != wanted:
            raise RefusedError(
                f"{name} {version} was judged under policy {gate.policy_version} "
                f"({(gate.policy_sha256 or '?')[:12]}), not the configured one ({wanted[:12]})"
            )

        def make(state: AliasState) -> AuditEvent:
            if version in state.archived:
                raise RefusedError(f"{name} {version} is archived: there is nothing left to judge")
            if problem := state.judge_problem(version, asdict(gate)):
                raise RefusedError(f"{name} {version} cannot be judged again: {problem}")
            return AuditEvent(
                action="judge",
                name=name,
                version=version,
                actor=self.settings.actor,
                role=self.settings.role,
                reason=reason,
                content_sha256=manifest.content_sha256,
                policy_sha256=gate.policy_sha256,
                gate={**asdict(gate), "evidence": evidence},
            )

        return self.log.append(name, make)

    def rollback(self, name: str, *, alias: str = "production", reason: str, expect: str | None = None) -> AuditEvent:
        """Point ``alias`` back at the version it held before, after proving that version's files.

        ``expect`` names the version the caller means to replace: when ``alias`` moved meanwhile
        (ten on-call people rolling back at once), the rollback is refused instead of stacking.

        Raises:
            RefusedError: no earlier version, it is archived, it was trained on another base model, or
                ``alias`` no longer holds ``expect``.
            IntegrityError: one of its stored files does not match its hash.
        """
        self.require_role("rollback", alias=alias)
        self._require_reason(reason, "roll back")
        self.require_alias(alias)
        if self.base_model is None:
            raise ConfigError("base_model: rolling back needs the configured base model's fingerprint")
        proven: dict[str, Manifest] = {}

        def make(state: AliasState) -> AuditEvent:
            if expect is not None and state.aliases.get(alias) != expect:
                raise RefusedError(
                    f"'{alias}' of '{name}' holds {state.aliases.get(alias) or 'nothing'}, not {expect}: "
                    "it moved meanwhile; look again (`tailor list`) before rolling back"
                )
            target = state.previous(alias)
            if target is None:
                raise RefusedError(f"'{alias}' of '{name}' has no earlier version to roll back to")
            if target in state.archived:
                raise RefusedError(f"cannot roll back '{alias}' to {name} {target}: it is archived")
            if target not in proven:
                manifest = self._checked_manifest(name, target, state)
                self._require_same_base(manifest)
                self._prove_files(manifest)
                proven[target] = manifest
            manifest = proven[target]
            return AuditEvent(
                action="rollback",
                name=name,
                version=target,
                actor=self.settings.actor,
                role=self.settings.role,
                reason=reason,
                content_sha256=manifest.content_sha256,
                alias=alias,
                alias_before=state.aliases.get(alias),
                alias_after=target,
                **gate_fields(manifest),
            )

        return self.log.append(validate_name(name), make)

    def archive(self, name: str, version: str, *, reason: str) -> AuditEvent:
        """Mark a version as never to be promoted again (its files stay, for the record).

        Raises:
            RefusedError: already archived, or an alias still points at it.
            NotFoundError: no such version.
        """
        self.require_role("archive")
        self._require_reason(reason, "archive")
        manifest = self.manifest(name, version)

        def make(state: AliasState) -> AuditEvent:
            if version in state.archived:
                raise RefusedError(f"{name} {version} is archived already")
            holders = sorted(a for a, v in state.aliases.items() if v == version)
            if holders:
                raise RefusedError(
                    f"{name} {version} is {' and '.join(holders)}: promote or roll back to another version first"
                )
            if problem := trainer_archive_problem(
                self.settings.role, f"{name} {version}", version, state.history, self.rules
            ):
                raise RefusedError(f"{problem} and may roll back to it; an approver (or admin) must")
            return AuditEvent(
                action="archive",
                name=name,
                version=version,
                actor=self.settings.actor,
                role=self.settings.role,
                reason=reason,
                content_sha256=manifest.content_sha256,
            )

        return self.log.append(name, make)

    def clear(self, name: str, *, reason: str) -> AuditEvent:
        """Remove what freezes ``name``'s log, and record that in the log: a bad newest event (junk,
        unparsable, forged or rule-breaking), objects that are not events (``…json.bak``), and
        objects past a gap where nothing was ever written (junk far ahead).

        Each gets a delete marker, so the bucket keeps it among its versions; the ``clear`` event
        names each with its sha256 and why, and `audit verify` lists it for review. A good event is
        never removed: the chain is judged object by object (``registry.audit.clearing``), not from verify's message.

        Raises:
            RefusedError: not an admin, no reason, nothing to clear, an event before the newest fails,
                or an event was deleted in the middle of the log (restore it from the object versions).
        """
        self.require_role("clear")
        self._require_reason(reason, "clear")
        self.log.require_signer()
        removed = objects_to_clear(self.store, name, self.log.judge)
        digests = [(key, sha256_hex(self.store.get(key)), why) for key, why in removed]
        for key, _, _ in digests:
            self.store.delete(key)
        cleared = "; ".join(f"cleared {key}, sha256 {digest}: {why}" for key, digest, why in digests)
        return self.log.append(
            name,
            lambda state: AuditEvent(
                action="clear",
                name=name,
                version="",
                actor=self.settings.actor,
                role=self.settings.role,
                reason=f"{reason} ({cleared})"[:MAX_REASON_CHARS],
                content_sha256=digests[-1][1],
            ),
        )

    def require_role(self, action: str, alias: str | None = None) -> None:
        """Raises: RefusedError: the configured role may not ``action`` (on ``alias``)."""
        if problem := role_problem(self.settings.role, action, alias, self.rules):
            raise RefusedError(problem)

    @staticmethod
    def _require_reason(reason: str, what: str, *, required: bool = True) -> None:
        if problem := reason_problem(reason, what, required=required):
            raise RefusedError(problem)

    def _claim_version(self, name: str) -> str:
        """Take the next version number with a create-only claim: racing registers get distinct ones.

        Numbers the log registered or that hold files count as taken too, so a claim deleted from
        the store can never hand out a version that exists (its files are create-only besides).
        """
        prefix = f"adapters/{name}/claims/"
        claimed = [o.key[len(prefix) :].removesuffix(".json") for o in self.store.list(prefix)]
        stored = list(self.store.folders(versions_prefix(name)))  # not every file: 16 a version after a retrain
        known = [version_number(v) for v in stored + list(self.state(name).versions) if is_version(v)]
        # A claim far past every known version is junk (v999999999 written by hand): skipped, it cannot
        # push the next number past what a version id may hold.
        ceiling = max(known, default=0) + MAX_CLAIM_GAP
        taken = known + [n for n in (version_number(v) for v in claimed if is_version(v)) if n <= ceiling]
        number = max(taken, default=0) + 1
        while True:
            version = f"v{number}"
            claim = canonical_json({"version": version, "actor": self.settings.actor, "time": utc_now()})
            try:
                self.store.put(f"{prefix}{version}.json", claim, create_only=True)
                return version
            except AlreadyExistsError:
                number += 1
