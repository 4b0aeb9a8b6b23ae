"""The one place the application is wired together: a ``Context`` per command or flow run.

A command (``pipelines/cli/state.py``) or a flow run (``pipelines/orchestration/flows.py``) builds
one at its start and hands it down; nothing below reads settings or the policy file on its own.
So a flow run judges, registers and promotes under the one snapshot of settings and policy it
started with, even if ``policy.yaml`` changes while it trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.policy import Policy, load_policy
from pipelines.settings import Settings, load_settings

if TYPE_CHECKING:
    from pipelines.webhooks import Delivery
    from registry.audit.events import AuditEvent
    from registry.fingerprint import BaseModelFingerprint
    from registry.registry import Registry
    from registry.settings import StoreSettings


@dataclass
class Context:
    """Settings, the promotion policy, a registry factory, the announcer and the base fingerprint.

    The policy and the fingerprint are read on first use and kept: ``tailor list`` never hashes a
    base model, and a command given ``--policy`` never needs the configured file to parse.
    """

    settings: Settings
    _policy: Policy | None = field(default=None, repr=False)

    @classmethod
    def load(cls) -> "Context":
        """Settings as configured now; the policy is read on first use.

        Raises:
            ConfigError: an invalid setting (see ``load_settings``).
        """
        return cls(load_settings())

    @classmethod
    def snapshot(cls) -> "Context":
        """Settings and policy read now, once, for a flow run that must not see them change.

        Raises:
            ConfigError: an invalid setting or policy file.
        """
        ctx = cls.load()
        ctx._policy = load_policy(ctx.settings.policy)
        return ctx

    @property
    def policy(self) -> Policy:
        """The configured promotion policy (``policy``, ``TAILOR_POLICY``; default the packaged one).

        Raises:
            ConfigError: the policy file is missing or malformed (naming the key).
        """
        if self._policy is None:
            self._policy = load_policy(self.settings.policy)
        return self._policy

    def policy_or(self, override: Path | None) -> Policy:
        """``override`` (a command's --policy) if given, else the configured policy.

        Raises:
            ConfigError: the chosen policy file is missing or malformed.
        """
        return load_policy(override) if override is not None else self.policy

    @cached_property
    def base_fingerprint(self) -> "BaseModelFingerprint":
        """The configured base model's content fingerprint (cached under ``home``)."""
        from registry.fingerprint import base_model_fingerprint

        settings = self.settings
        return base_model_fingerprint(settings.base_model_dir, settings.model_id_of(None), cache_dir=settings.home)

    def registry(self, *, with_base: bool = False, acting: "StoreSettings | None" = None) -> "Registry":
        """The registry as ``acting`` (default: the configured role and actor); ``with_base`` records the
        base model's fingerprint (for register and promote).

        Its governance rules (four-eyes, a gate decision for production) come from the promotion
        policy, so the rule that judged a promotion is the one whose sha256 the gate decisions record.

        Raises:
            ConfigError: no credentials for the configured role, or a malformed policy.
        """
        from registry.governance import RegistryRules
        from registry.registry import Registry
        from registry.store import S3ObjectStore

        store_settings = acting or self.settings.store()
        base = self.base_fingerprint if with_base else None
        promotion = self.policy.promotion
        rules = RegistryRules(
            four_eyes_production=promotion.four_eyes_production,
            require_gate=promotion.require_gate_decision,
            policy_sha256=self.policy.sha256,
        )
        return Registry(
            S3ObjectStore(store_settings), store_settings, base_model=base, rules=rules, cache_dir=self.settings.home
        )

    def announce(self, event: "AuditEvent", acting: "StoreSettings | None" = None) -> list["Delivery"]:
        """Announce a promote or rollback to the configured webhooks; each delivery is logged in the
        store as ``acting`` (default: the configured role and actor).

        Raises:
            ConfigError: webhooks are configured but no ``webhook_secret`` is set.
        """
        from pipelines.webhooks import announce_audit_event
        from registry.store import S3ObjectStore

        if not self.settings.webhooks:
            return []
        store = S3ObjectStore(acting or self.settings.store())
        return announce_audit_event(
            event, urls=self.settings.webhooks, secret=self.settings.webhook_secret, store=store
        )
