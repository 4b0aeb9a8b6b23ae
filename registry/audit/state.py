"""Alias state as the fold of a log's events: each event checked (hash, link, sequence, meaning) as it applies."""

from __future__ import annotations

import copy
import json
import typing
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from registry.audit.events import ACTIONS, GENESIS, AuditEvent, audit_prefix
from registry.canonical import canonical_json
from registry.errors import IntegrityError
from registry.event_time import time_problem
from registry.gate_summary import GateSummary, failure_check


def all_text(items: Any) -> bool:
    return all(isinstance(item, str) for item in items)


@dataclass
class AliasState:
    """What the log says now: aliases, each alias's history, registered and archived versions."""

    name: str
    head_seq: int = 0
    head_sha256: str = GENESIS
    head_time: str = ""
    aliases: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)  # versions each alias held, newest last
    versions: dict[str, str] = field(default_factory=dict)  # registered version → manifest content hash
    archived: list[str] = field(default_factory=list)
    promoted: list[str] = field(default_factory=list)  # versions an alias ever held: their manifests existed
    registered_by: dict[str, str] = field(default_factory=dict)  # version → who registered it
    signed: int = 0  # events that carry a signature (the others are legacy, sealed by the keyring)
    # registered version → its gate verdict as it stands (the register event's, then each judge event's)
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def referenced(self, version: str) -> bool:
        """Whether an event after its register needed ``version``'s manifest (promote, archive)."""
        return version in self.promoted or version in self.archived

    def previous(self, alias: str) -> str | None:
        """The version ``alias`` held before its current one (what a rollback returns to)."""
        held = self.history.get(alias, [])
        return held[-2] if len(held) >= 2 else None

    def apply(self, event: AuditEvent, judge: "Judge | None" = None) -> None:
        """Fold one event in, after checking that it follows the log and makes sense there, and,
        with a ``judge``, that its signer could sign it and the rules allowed it.

        Raises:
            IntegrityError: wrong hash, wrong link, wrong sequence, or an event the log cannot explain.
        """
        # Named by the object it was read from (the next one in the log), not by the seq it claims.
        where = f"{audit_prefix(self.name)}{self.head_seq + 1:012d}.json"
        label = f"event {self.head_seq + 1:012d} of '{self.name}'"
        if event.digest() != event.sha256:
            raise IntegrityError(f"{label} was modified: its content does not match its sha256")
        if event.seq != self.head_seq + 1 or event.name != self.name:
            raise IntegrityError(
                f"{where} records seq {event.seq} of '{event.name}': it was inserted, moved or copied there, or "
                f"{self.head_seq:012d} was replaced or inserted before it"
            )
        if event.prev_sha256 != self.head_sha256:
            before = f"{self.head_seq:012d}"
            raise IntegrityError(
                f"{label} does not follow event {before}: its prev_sha256 is not that event's hash, so event "
                f"{before} was replaced or inserted (or {event.key_name} was rewritten)"
            )
        if problem := time_problem(event.time, self.head_time):
            raise IntegrityError(
                f"{label} ({event.action} {event.version}) has a time the log cannot explain: {problem}"
            )
        problem = self._meaning_problem(event)
        if problem:
            raise IntegrityError(f"{label} ({event.action} {event.version}) is inconsistent with the log: {problem}")
        if judge is not None:
            judge(self, event, f"{label} ({event.action} {event.version} by {event.actor})")
        if event.signature is not None:
            self.signed += 1
        if event.action == "register":
            self.versions[event.version] = event.content_sha256 or ""
            self.registered_by[event.version] = event.actor
            if event.gate is not None:
                self.verdicts[event.version] = _verdict(event.gate)
        elif event.action in ("clear", "delete-traffic"):
            pass
        elif event.action == "archive":
            self.archived.append(event.version)
        elif event.action == "judge":
            self.verdicts[event.version] = _verdict(event.gate or {})  # no alias moves
        elif event.action == "promote":
            self.history.setdefault(event.alias, []).append(event.version)
            self.aliases[event.alias] = event.version
            if event.version not in self.promoted:
                self.promoted.append(event.version)
        else:  # rollback
            self.history[event.alias].pop()
            self.aliases[event.alias] = event.alias_after
        self.head_seq, self.head_sha256, self.head_time = event.seq, event.sha256, event.time

    def _meaning_problem(self, event: AuditEvent) -> str | None:
        if event.action not in ACTIONS:
            return f"unknown action {event.action!r}"
        if event.action in ("clear", "delete-traffic"):  # records what an admin removed; changes nothing
            return None
        if event.action == "register":
            return f"{event.version} was registered before" if event.version in self.versions else None
        if event.version not in self.versions:
            return f"{event.version} was never registered"
        if event.version in self.archived and event.action in ("archive", "promote", "judge"):
            return f"{event.version} was archived before"
        if event.action == "judge":
            return self.judge_problem(event.version, event.gate)
        if event.action == "archive":
            holders = [a for a, v in self.aliases.items() if v == event.version]
            return f"{event.version} is held by {', '.join(holders)}" if holders else None
        current = self.aliases.get(event.alias or "")
        if event.alias_before != current:
            return f"alias_before is {event.alias_before!r} but '{event.alias}' held {current!r}"
        if event.action == "promote":
            return None if event.alias_after == event.version else "alias_after is not the promoted version"
        previous = self.previous(event.alias or "")
        if previous is None or event.alias_after != previous or event.version != previous:
            return f"a rollback of '{event.alias}' must return to {previous!r}"
        return None

    def verdict(self, version: str) -> GateSummary | None:
        """``version``'s gate verdict as it stands: its newest judge event's, else its register event's."""
        return _summary(self.verdicts.get(version))

    def judge_problem(self, version: str, gate: dict[str, Any] | None) -> str | None:
        """Why ``gate`` cannot stand as ``version``'s new verdict, or None.

        A judge event may only finish what the gate left open: the verdict as it stands must name
        checks it could not judge, and the new one may differ only in those checks (now failed,
        passed or still not judged). Kept here, in the fold, so no writer can skip it and a forged
        event is refused by every reader.
        """
        new, old = _summary(gate), _summary(self.verdicts.get(version))
        if new is None:
            return "a judge event carries no well-formed gate verdict"
        if not new.consistent():
            return (
                f"its verdict says passed={str(new.passed).lower()} with {len(new.failures)} failure(s) and "
                f"{len(new.not_judged)} check(s) not judged"
            )
        if old is None or not old.not_judged:
            return f"{version}'s verdict has no check left unjudged: only such a check may be judged again"
        opened = old.unjudged_checks()
        if (new.policy_sha256, new.policy_version, new.against) != (old.policy_sha256, old.policy_version, old.against):
            return (
                f"it changes the policy or production it was judged under (policy {old.policy_version}, "
                f"against {old.against}): only the checks not judged may change"
            )
        added = [f for f in new.failures if f not in old.failures]
        if any(f not in new.failures for f in old.failures) or any(failure_check(f) not in opened for f in added):
            return f"it changes failures outside the checks not judged ({', '.join(sorted(opened))})"
        if not new.unjudged_checks() <= opened:
            return f"it leaves checks unjudged that were judged before ({', '.join(sorted(new.unjudged_checks()))})"
        return None

    def to_json(self) -> bytes:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> "AliasState":
        """Raises: ValueError, TypeError: not a state as ``to_json`` writes it (a damaged cache file)."""
        state = cls(**json.loads(data))
        if not (
            isinstance(state.name, str)
            and type(state.head_seq) is int
            and isinstance(state.head_sha256, str)
            and isinstance(state.head_time, str)
            and isinstance(state.archived, list)
            and all_text(state.archived)
            and isinstance(state.promoted, list)
            and all_text(state.promoted)
            and type(state.signed) is int
            and all(
                isinstance(m, dict) and all_text(m)
                for m in (state.aliases, state.history, state.versions, state.registered_by)
            )
            and all_text(state.aliases.values())
            and all_text(state.versions.values())
            and all_text(state.registered_by.values())
            and isinstance(state.verdicts, dict)
            and all(isinstance(v, dict) for v in state.verdicts.values())
            and all(isinstance(held, list) and all_text(held) for held in state.history.values())
        ):
            raise ValueError("not an alias state")
        return state


def _verdict(gate: dict[str, Any]) -> dict[str, Any]:
    """What the state keeps of an event's gate: the summary, without the evidence a judge event adds."""
    return {k: v for k, v in gate.items() if k != "evidence"}


def _summary(gate: dict[str, Any] | None) -> GateSummary | None:
    """``gate`` as a summary, or None when it is not one (missing or mistyped fields)."""
    if not isinstance(gate, dict):
        return None
    wanted = {f.name for f in fields(GateSummary)}
    try:
        summary = GateSummary(**{k: v for k, v in gate.items() if k in wanted})
    except TypeError:
        return None
    texts = (summary.failures, summary.not_judged)
    if not isinstance(summary.passed, bool) or not all(isinstance(t, list) and all_text(t) for t in texts):
        return None
    return summary


class Judge(typing.Protocol):
    """Judges an event against the state before it (``registry.event_judge.EventJudge``)."""

    def __call__(self, state: AliasState, event: AuditEvent, label: str) -> None:
        """Raises: IntegrityError: naming what the signer could not do."""

    def signs(self) -> bool:
        """Whether the store's events must be signed (it has a keyring)."""


def fold(state: AliasState, events: list[AuditEvent], judge: Judge | None = None) -> AliasState:
    """A new state: ``state`` with ``events`` applied in order (``state`` itself is left alone)."""
    new = copy.deepcopy(state)
    for event in events:
        new.apply(event, judge)
    return new
