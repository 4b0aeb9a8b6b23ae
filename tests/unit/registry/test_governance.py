"""The governance rules as pure judgements: the same answers for the client and for replay."""

from __future__ import annotations

import pytest

from registry.audit.events import AuditEvent
from registry.audit.state import AliasState
from registry.gate_summary import GateSummary
from registry.governance import (
    RegistryRules,
    actor_problem,
    breaks_four_eyes,
    event_rule_problem,
    gate_problem,
    override_problem,
    reason_problem,
    role_problem,
    stale_gate,
    trainer_archive_problem,
)

RULES = RegistryRules(policy_sha256="a" * 64)


def test_roles():
    assert role_problem("reader", "promote", "staging", RULES) == (
        "role 'reader' may only read; promote needs one of: admin, approver, trainer"
    )
    assert role_problem("trainer", "promote", "production", RULES) == (
        "role 'trainer' cannot move 'production': an approver (or admin) must"
    )
    assert role_problem("trainer", "promote", "staging", RULES) is None
    assert override_problem("admin", RULES) == "--override is reserved to the approver role"
    assert override_problem("approver", RULES) is None


def test_four_eyes_holds_for_production_only_and_reads_names_as_people_do():
    assert breaks_four_eyes(RULES, "production", "Alice", "ａｌｉｃｅ")
    assert not breaks_four_eyes(RULES, "staging", "alice", "alice")
    assert not breaks_four_eyes(RegistryRules(four_eyes_production=False), "production", "alice", "alice")


def test_a_gate_that_compared_with_other_than_production_now_is_stale():
    assert stale_gate(RULES, "production", "v1", gated=True, against=None, name="t")
    assert not stale_gate(RULES, "production", "v1", gated=True, against="t:v1", name="t")
    assert not stale_gate(RULES, "production", None, gated=True, against=None, name="t")
    assert not stale_gate(RULES, "staging", "v1", gated=True, against=None, name="t")


@pytest.mark.parametrize(
    ("gate", "judged_again", "expected"),
    [
        (None, False, "t v2 was registered without a gate decision"),
        (
            GateSummary(False, "a" * 64, "1", ["quality: macro_f1 = 0.5, policy quality.min_macro_f1 requires >= 0.8"]),
            False,
            "t v2 failed its gate: quality: macro_f1 = 0.5",
        ),
        (
            GateSummary(False, "a" * 64, "1", [], not_judged=["load: not judged: machine too busy"]),
            False,
            "t v2's gate could not judge load (load: not judged: machine too busy): judge it again with "
            "`tailor judge-load t v2`",
        ),
        (
            GateSummary(True, "b" * 64, "0"),
            False,
            "t v2's gate passed under policy 0 (bbbbbbbbbbbb), not the configured",
        ),
        (GateSummary(True, "b" * 64, "0"), True, "t v2's load was judged again"),
        (GateSummary(True, "a" * 64, "1"), False, None),
    ],
)
def test_what_a_gate_must_be_for_production(gate, judged_again, expected):
    problem = gate_problem("t v2", "t", gate, RULES, judged_again=judged_again, binding_problem=None)
    assert problem == expected if expected is None else problem.startswith(expected)


def test_a_gate_for_other_weights_does_not_count_even_when_it_passed():
    gate = GateSummary(True, "a" * 64, "1")
    assert gate_problem("t v2", "t", gate, RULES, judged_again=False, binding_problem="copied") == "copied"


def test_reasons_and_actors_must_read_as_one_visible_line():
    assert reason_problem("", "promote").startswith("a reason is required to promote")
    assert reason_problem("", "register", required=False) is None
    assert (
        reason_problem("ok\nforged line", "promote")
        == "a reason must be one line of visible text; this one holds U+000A"
    )
    assert reason_problem("x" * 2001, "promote").startswith("a reason is at most 2000 characters")
    assert reason_problem("品質確認済み", "promote") is None
    assert actor_problem(" alice") is not None and actor_problem("al\u200bice") is not None
    assert actor_problem("山田") is None


def test_replay_judges_the_rules_the_client_judged():
    state = AliasState(
        name="t", versions={"v1": "c" * 64}, registered_by={"v1": "alice"}, history={"production": ["v1"]}
    )

    def event(**fields):
        return AuditEvent(
            **{
                "name": "t",
                "version": "v1",
                "actor": "bob",
                "role": "approver",
                "reason": "r",
                "content_sha256": "c" * 64,
                **fields,
            }
        )

    promote = {"action": "promote", "alias": "production", "alias_after": "v1"}
    assert event_rule_problem(state, event(**promote, actor="Alice"), RULES) == (
        "four-eyes: Alice registered v1 and promoted it to production"
    )
    assert event_rule_problem(state, event(**promote), RULES) == (
        "v1 has no gate decision and the promotion has no --override"
    )
    assert event_rule_problem(state, event(**promote, override=True), RULES) is None
    assert event_rule_problem(state, event(**promote, override=True, role="admin"), RULES) == (
        "--override is reserved to the approver role"
    )
    assert event_rule_problem(state, event(action="archive", role="trainer"), RULES) == (
        trainer_archive_problem("trainer", "v1", "v1", state.history, RULES)
    )
    assert event_rule_problem(state, event(action="archive", content_sha256="d" * 64), RULES).startswith(
        "it names a manifest of v1 other than"
    )
