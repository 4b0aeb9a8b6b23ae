"""The governance rules of the registry, as pure judgements: who may act, four-eyes, the gate a
production promotion needs, overrides, archiving, and what a reason or an actor name may be.

Like ``pipelines.evaluation.gate.decide``: no store, no clock, no I/O. Each rule has one home here and two
callers: ``Registry``, which judges an action before its event lands, and ``EventJudge``, which
judges every signed event again on replay, so an event a client of one's own wrote against them
is named instead of believed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry.gate_summary import GateSummary
from registry.text import control_characters, has_visible_text, same_person

if TYPE_CHECKING:  # the rules read events and states; they never write or fold them
    from registry.audit.events import AuditEvent
    from registry.audit.state import AliasState

MAX_REASON_CHARS = 2000
MAX_ACTOR_CHARS = 128


@dataclass(frozen=True)
class RegistryRules:
    """Governance rules that are configuration, not code."""

    four_eyes_production: bool = True  # whoever registered a version cannot promote it to production
    aliases: tuple[str, ...] = ("staging", "production")
    production_alias: str = "production"
    override_roles: tuple[str, ...] = ("approver",)  # who may promote past a failed gate, with a reason
    # A version registered without a gate decision was never compared with production: it may not
    # reach production by accident, only by an approver's --override.
    require_gate: bool = True
    # The configured policy's sha256: a gate decided under another policy does not count for production.
    policy_sha256: str | None = None


WRITERS = {
    "register": ("admin", "trainer"),
    "promote": ("admin", "approver", "trainer"),
    "rollback": ("admin", "approver", "trainer"),
    "archive": ("admin", "approver", "trainer"),
    "judge": ("admin", "approver", "trainer"),
    "clear": ("admin",),
    "delete-traffic": ("admin",),
}


def role_problem(role: str, action: str, alias: str | None, rules: RegistryRules) -> str | None:
    """Why ``role`` may not ``action`` (on ``alias``), if it may not."""
    if role not in WRITERS.get(action, ()):
        can = "only read" if role == "reader" else "not " + action
        return f"role '{role}' may {can}; {action} needs one of: {', '.join(WRITERS.get(action, ()))}"
    if role == "trainer" and alias == rules.production_alias:
        return f"role 'trainer' cannot move '{alias}': an approver (or admin) must"
    return None


def override_problem(role: str, rules: RegistryRules) -> str | None:
    """Why ``role`` may not pass a failed, stale or missing gate with --override, if it may not."""
    if role in rules.override_roles:
        return None
    return f"--override is reserved to the {' or '.join(rules.override_roles)} role"


def breaks_four_eyes(rules: RegistryRules, alias: str, registrant: str, actor: str) -> bool:
    """Whether ``actor`` moving ``alias`` to a version ``registrant`` registered breaks four-eyes."""
    return alias == rules.production_alias and rules.four_eyes_production and same_person(registrant, actor)


def gate_problem(
    label: str,
    name: str,
    gate: GateSummary | None,
    rules: RegistryRules,
    *,
    judged_again: bool,
    binding_problem: str | None,
) -> str | None:
    """Why ``gate`` (a version's verdict as it stands) does not allow production, if it does not.

    ``judged_again``: the verdict is a later ``judge`` event's, not the one registered with the version;
    ``binding_problem``: why the decision does not hold for the version's own weights (or None).
    """
    if gate is None:
        if not rules.require_gate:
            return None
        return (
            f"{label} was registered without a gate decision: evaluate its folder against production "
            f"(`tailor evaluate --adapter FOLDER --data HOLDOUT --name {name}`) and register the folder again"
        )
    if gate.not_judged and not gate.failures:
        return (
            f"{label}'s gate could not judge {', '.join(sorted(gate.unjudged_checks()))} ("
            f"{'; '.join(gate.not_judged)}): judge it again with `tailor judge-load {label}`"
        )
    if not gate.passed:
        return f"{label} failed its gate: {'; '.join(gate.failures + gate.not_judged) or 'no details'}"
    if binding_problem is not None:
        return binding_problem
    wanted = rules.policy_sha256
    if wanted is not None and gate.policy_sha256 != wanted and judged_again:
        return (
            f"{label}'s load was judged again (`tailor judge-load`) under policy {gate.policy_version} "
            f"({(gate.policy_sha256 or '?')[:12]}), the one its gate was decided under, not the configured "
            f"one ({wanted[:12]}): evaluate its folder under the configured policy and register it again"
        )
    if wanted is not None and gate.policy_sha256 != wanted:
        return (
            f"{label}'s gate passed under policy {gate.policy_version} ({(gate.policy_sha256 or '?')[:12]}), "
            f"not the configured one ({wanted[:12]}): re-judge its decision (`tailor gate --decision "
            "FOLDER/gate_decision.json --out FOLDER/gate_decision.json`) and register the folder again"
        )
    return None


def stale_gate(
    rules: RegistryRules, alias: str, current: str | None, *, gated: bool, against: str | None, name: str
) -> bool:
    """Whether a production promotion rests on a gate that compared the candidate with something other
    than what production holds now (production moved since the gate ran)."""
    return alias == rules.production_alias and current is not None and gated and against != f"{name}:{current}"


def trainer_archive_problem(
    role: str, label: str, version: str, history: dict[str, list[str]], rules: RegistryRules
) -> str | None:
    """Why ``role`` may not archive ``version`` (``label``): a trainer may not take away a version
    production held, which production may roll back to."""
    production = rules.production_alias
    if role == "trainer" and version in history.get(production, []):
        return f"role 'trainer' cannot archive {label}: '{production}' held it"
    return None


def event_rule_problem(state: AliasState, event: AuditEvent, rules: RegistryRules) -> str | None:
    """Why a recorded ``event`` breaks the rules on the log before it (``state``), if it does.

    The client judged the same rules before the event landed (``Registry``); a signed log is judged
    again on replay, from what the event records.
    """
    if problem := role_problem(event.role, event.action, event.alias, rules):
        return problem
    if event.action in ("register", "clear", "delete-traffic"):
        return None
    if event.content_sha256 != state.versions.get(event.version):
        return f"it names a manifest of {event.version} other than the one its register event recorded"
    if event.action == "archive":
        return trainer_archive_problem(event.role, event.version, event.version, state.history, rules)
    if event.override and event.action == "promote" and (problem := override_problem(event.role, rules)):
        return problem
    if event.action != "promote" or event.alias != rules.production_alias:
        return None
    if breaks_four_eyes(rules, event.alias, state.registered_by.get(event.version, ""), event.actor):
        return f"four-eyes: {event.actor} registered {event.version} and promoted it to {event.alias}"
    if event.override:
        return None
    if event.gate is None and rules.require_gate:
        return f"{event.version} has no gate decision and the promotion has no --override"
    if event.gate is not None and event.gate.get("passed") is not True:
        return f"{event.version} failed its gate and the promotion has no --override"
    return None


def production_moves_to_review(events: list[AuditEvent]) -> list[str]:
    """Promotions to production that four-eyes or the gate rule would have refused.

    The rules are judged by the client that writes the event, under the policy it was configured
    with: a policy that switched them off, or a client of one's own, leaves events that chain
    perfectly. They are listed for a person to look at, not refused: the policy of the day may
    have allowed them.
    """
    registered_by = {e.version: e.actor for e in events if e.action == "register"}
    found = []
    for e in events:
        if e.action != "promote" or e.alias != "production":
            continue
        where = f"event {e.key_name}: {e.actor} moved production to {e.version}"
        registrant = registered_by.get(e.version, "")
        if same_person(e.actor, registrant):
            found.append(f"{where}, which {registrant} registered (four-eyes off, or not applied)")
        if e.gate is None and not e.override:
            found.append(f"{where} without a gate decision or --override (require_gate_decision off, or not applied)")
        elif e.gate is not None and e.gate.get("passed") is not True and not e.override:
            found.append(f"{where}, whose gate failed, without --override (not applied)")
    return found


def reason_problem(reason: str, what: str, *, required: bool = True) -> str | None:
    """Why ``reason`` cannot go into the audit log for ``what``, if it cannot."""
    if not has_visible_text(reason):
        if required or reason:
            return f"a reason is required to {what} (--reason TEXT): it goes into the audit log" + (
                " (this one has nothing visible)" if reason.strip() else ""
            )
        return None
    if hidden := control_characters(reason):
        # a line break or an invisible character would let a reason pass for other lines of `tailor audit log`
        return f"a reason must be one line of visible text; this one holds {', '.join(hidden)}"
    if len(reason) > MAX_REASON_CHARS:
        # every reason stays in the append-only log for good, and is read back on every replay
        return (
            f"a reason is at most {MAX_REASON_CHARS} characters (this one has {len(reason)}); "
            "link to a ticket for the details"
        )
    return None


def actor_problem(actor: str) -> str | None:
    """Why ``actor`` is not a name a log reader can tell from another one, if it is not."""
    if not actor.strip() or actor != actor.strip() or control_characters(actor) or len(actor) > MAX_ACTOR_CHARS:
        return (
            f"actor {actor!r} is refused: use 1-{MAX_ACTOR_CHARS} visible characters, without spaces around "
            "them, line breaks or invisible characters (it names who acted in the audit log)"
        )
    return None
