"""The gate judges every check result under the policy it is given and lists every failure."""

import math

import pytest

from pipelines.evaluation.gate import REQUIRED_CHECKS, decide, describe
from pipelines.policy import LoadPolicy, Policy, QualityPolicy, load_policy
from pipelines.records import CheckResult, GateDecision, GateFailure, Threshold, holds
from registry.errors import ConfigError
from registry.gate_summary import gate_summary


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()


def passing_checks(policy: Policy) -> list[CheckResult]:
    """One realistic passing result per required check, each limit taken from the policy."""

    def t(metric, key, value, comparison):
        return Threshold.judge(metric, key, value, comparison, policy.limit(key))

    return [
        CheckResult.judged(
            "quality",
            [
                t("holdout_size", "quality.min_holdout_size", 40, ">="),
                t("macro_f1", "quality.min_macro_f1", 0.9, ">="),
                t("macro_f1_drop_upper", "quality.max_regression", 0.0, "<="),
                t("holdout_trained_share", "quality.max_holdout_trained_share", 0.0, "<="),
                t("label_coverage", "quality.min_label_coverage", 1.0, ">="),
            ],
            evidence=["reports/quality.json"],
        ),
        CheckResult.judged(
            "drift",
            [t("drifted_share", "drift.max_drifted_share", 0.1, "<=")],
            evidence=["reports/drift.html", "reports/drift.json"],
        ),
        CheckResult.judged("bias", [t("macro_f1_gap", "bias.max_gap", 0.05, "<=")]),
        CheckResult.judged(
            "cost",
            [
                t("train_seconds", "cost.max_train_seconds", 30, "<="),
                t("peak_rss_mb", "cost.max_peak_rss_mb", 700, "<="),
                t("money", "cost.max_money", 0.001, "<="),
            ],
        ),
        CheckResult.judged(
            "load",
            [
                t("base_spread", "load.max_base_spread", 1.4, "<="),
                t("p95_ratio", "load.max_p95_ratio", 1.1, "<="),
                t("throughput_ratio", "load.min_throughput_ratio", 0.8, ">="),
                t("rss_mb", "load.max_rss_mb", 600, "<="),
                t("adapter_mb", "load.max_adapter_mb", 0.3, "<="),
            ],
            evidence=["reports/load.json"],
        ),
    ]


def replace(checks: list[CheckResult], new: CheckResult) -> list[CheckResult]:
    return [new if c.name == new.name else c for c in checks]


def with_value(check: CheckResult, metric: str, value) -> CheckResult:
    thresholds = [t.model_copy(update={"value": value}) if t.metric == metric else t for t in check.thresholds]
    return check.model_copy(update={"thresholds": thresholds})


def by_name(checks, name) -> CheckResult:
    return next(c for c in checks if c.name == name)


def test_every_check_within_its_limits_passes_and_records_the_policy(policy):
    decision = decide(policy, passing_checks(policy), adapter="tickets:3", against="tickets:2")
    assert decision.passed is True
    assert decision.failures == []
    assert decision.policy_sha256 == policy.sha256 and len(policy.sha256) == 64
    assert decision.policy_version == policy.version
    assert [c.name for c in decision.checks] == list(REQUIRED_CHECKS)
    assert (decision.adapter, decision.against) == ("tickets:3", "tickets:2")


def test_every_failed_threshold_is_listed_not_just_the_first(policy):
    checks = passing_checks(policy)
    checks = replace(checks, with_value(by_name(checks, "quality"), "macro_f1", 0.31))
    checks = replace(checks, with_value(by_name(checks, "quality"), "macro_f1_drop_upper", 0.12))
    checks = replace(checks, with_value(by_name(checks, "load"), "p95_ratio", 9.0))
    checks = replace(checks, with_value(by_name(checks, "load"), "adapter_mb", 999.0))
    checks = replace(checks, with_value(by_name(checks, "cost"), "money", 5.0))

    decision = decide(policy, checks)

    assert decision.passed is False
    found = {(f.check, f.metric): f for f in decision.failures}
    assert set(found) == {
        ("quality", "macro_f1"),
        ("quality", "macro_f1_drop_upper"),
        ("load", "p95_ratio"),
        ("load", "adapter_mb"),
        ("cost", "money"),
    }
    f1 = found[("quality", "macro_f1")]
    assert (f1.value, f1.limit, f1.comparison, f1.policy_key) == (
        0.31,
        policy.quality.min_macro_f1,
        ">=",
        "quality.min_macro_f1",
    )
    assert f1.evidence == ["reports/quality.json"]
    p95 = found[("load", "p95_ratio")]
    assert (p95.value, p95.limit, p95.comparison) == (9.0, policy.load.max_p95_ratio, "<=")
    assert "load.max_p95_ratio" in p95.describe() and "9" in p95.describe()


@pytest.mark.parametrize("name", REQUIRED_CHECKS)
def test_a_missing_check_fails_the_gate_naming_it(policy, name):
    checks = [c for c in passing_checks(policy) if c.name != name]
    decision = decide(policy, checks)
    assert decision.passed is False
    assert [(f.check, f.reason) for f in decision.failures] == [(name, "check did not run (missing result)")]


def test_no_checks_at_all_fails_once_per_required_check(policy):
    decision = decide(policy, [])
    assert decision.passed is False
    assert [f.check for f in decision.failures] == list(REQUIRED_CHECKS)


def test_a_check_that_errored_fails_with_its_error_even_if_it_claims_nothing_else(policy):
    checks = replace(passing_checks(policy), CheckResult.failed("drift", "production reference.csv is unreadable"))
    decision = decide(policy, checks)
    assert decision.passed is False
    assert len(decision.failures) == 1
    failure = decision.failures[0]
    assert failure.check == "drift"
    assert failure.reason == "check errored: production reference.csv is unreadable"
    # Typed as a reason, not shaped as a threshold: no metric, value, limit or policy key to show.
    assert (failure.metric, failure.value, failure.comparison, failure.limit, failure.policy_key) == (None,) * 5
    assert failure.describe() == "drift: check errored: production reference.csv is unreadable"
    # The registry's summary of the written decision reads the same line: one formatter.
    assert gate_summary(decision.model_dump(mode="json")).failures == [failure.describe()]


def test_a_reason_written_as_a_status_threshold_reads_as_the_reason(policy):
    """Decisions written before 2026-12-06 shaped a reason as the threshold "status == ok"."""
    legacy = {
        "check": "drift",
        "metric": "status",
        "value": "check errored: boom",
        "limit": "ok",
        "comparison": "==",
        "reason": "check errored: boom",
    }
    assert GateFailure.model_validate(legacy).describe() == "drift: check errored: boom"
    without_reason = {k: v for k, v in legacy.items() if k != "reason"}
    summary = gate_summary({"passed": False, "failures": [without_reason]})
    assert summary.failures == ["drift: check errored: boom"]


def test_an_error_on_a_result_that_says_passed_still_fails(policy):
    broken = by_name(passing_checks(policy), "cost").model_copy(update={"error": "train_result.json missing"})
    decision = decide(policy, replace(passing_checks(policy), broken))
    assert [f.check for f in decision.failures] == ["cost"]


def test_a_check_reported_twice_fails(policy):
    checks = passing_checks(policy)
    decision = decide(policy, checks + [by_name(checks, "bias")])
    assert decision.passed is False
    assert [f.reason for f in decision.failures] == ["check reported 2 results; exactly one is expected"]


@pytest.mark.parametrize("value", [None, math.nan])
def test_a_value_that_was_not_measured_fails(policy, value):
    checks = passing_checks(policy)
    checks = replace(checks, with_value(by_name(checks, "load"), "rss_mb", value))
    decision = decide(policy, checks)
    assert [(f.metric, f.reason) for f in decision.failures] == [("rss_mb", "rss_mb was not measured")]


def test_a_threshold_naming_a_policy_key_that_does_not_exist_fails(policy):
    odd = CheckResult.judged(
        "bias",
        [Threshold(metric="gap", policy_key="bias.max_gapp", value=0.0, limit=1.0, comparison="<=", passed=True)],
    )
    decision = decide(policy, replace(passing_checks(policy), odd))
    assert decision.passed is False
    assert "policy has no numeric limit 'bias.max_gapp'" in decision.failures[0].reason


def test_the_gate_judges_by_the_policy_it_is_given_not_the_limit_the_check_used(policy):
    checks = passing_checks(policy)
    strict = policy.model_copy(update={"load": LoadPolicy(max_p95_ratio=1), "sha256": "f" * 64})
    decision = decide(strict, checks)
    assert [(f.check, f.metric, f.limit) for f in decision.failures] == [("load", "p95_ratio", 1.0)]
    assert decision.policy_sha256 == "f" * 64

    failing_quality = with_value(by_name(checks, "quality"), "macro_f1", 0.5)
    loose = policy.model_copy(update={"quality": QualityPolicy(min_macro_f1=0.4)})
    assert decide(policy, replace(checks, failing_quality)).passed is False
    assert decide(loose, replace(checks, failing_quality)).passed is True


def test_a_check_reported_but_not_judged_keeps_its_own_verdict(policy):
    not_judged = CheckResult(name="bias", passed=True, details={"summary": "no group column: not judged"})
    assert decide(policy, replace(passing_checks(policy), not_judged)).passed is True
    refused = CheckResult(name="bias", passed=False, details={"summary": "claims failure"})
    decision = decide(policy, replace(passing_checks(policy), refused))
    assert [f.reason for f in decision.failures] == ["check failed without a measured threshold"]


def test_an_extra_check_beyond_the_required_ones_is_judged_too(policy):
    extra = CheckResult.judged("calibration", [Threshold.judge("gap", "bias.max_gap", 0.1, "<=", 0.25)])
    decision = decide(policy, passing_checks(policy) + [extra])
    assert [(f.check, f.reason) for f in decision.failures] == [
        ("calibration", "gap: judged against bias.max_gap, a limit of the bias check")
    ]


@pytest.mark.parametrize(
    "edit, reason",
    [
        (
            lambda t: t.model_copy(update={"comparison": ">="}),
            "p95_ratio: compared with >=, but load.max_p95_ratio is an upper limit",
        ),
        (
            lambda t: t.model_copy(update={"policy_key": "cost.max_peak_rss_mb"}),
            "the result judges no load.max_p95_ratio",
        ),
    ],
)
def test_a_threshold_edited_to_another_comparison_or_key_fails_however_the_value_compares(policy, edit, reason):
    checks = passing_checks(policy)
    load = by_name(checks, "load")
    edited = load.model_copy(
        update={"thresholds": [edit(t) if t.metric == "p95_ratio" else t for t in load.thresholds]}
    )
    decision = decide(policy, replace(checks, edited))
    assert not decision.passed and any(reason in f.reason for f in decision.failures), decision.failures


@pytest.mark.parametrize("name", ["quality", "cost", "load"])
def test_a_check_cut_down_to_no_thresholds_fails_rather_than_standing_on_its_own_verdict(policy, name):
    checks = passing_checks(policy)
    cut = by_name(checks, name).model_copy(update={"thresholds": [], "passed": True})
    decision = decide(policy, replace(checks, cut))
    assert [f.check for f in decision.failures] == [name] and "the decision was cut down" in decision.failures[0].reason


def test_a_candidate_compared_with_production_must_be_judged_on_its_regression(policy):
    checks = passing_checks(policy)
    quality = by_name(checks, "quality")
    cut = quality.model_copy(
        update={"thresholds": [t for t in quality.thresholds if t.metric != "macro_f1_drop_upper"]}
    )
    assert decide(policy, replace(checks, cut)).passed  # not compared: nothing to regress from
    decision = decide(policy, replace(checks, cut), against="tickets:2")
    assert not decision.passed and "quality.max_regression" in decision.failures[0].reason


@pytest.mark.parametrize(
    ("value", "comparison", "limit", "expected"),
    [
        (1.0, ">=", 1.0, True),
        (0.99, ">=", 1.0, False),
        (1.0, "<=", 1.0, True),
        (1.01, "<=", 1.0, False),
        (1.0, ">", 1.0, False),
        (1.01, ">", 1.0, True),
        (1.0, "<", 1.0, False),
        (0.99, "<", 1.0, True),
        (None, "<=", 1.0, False),
        (math.nan, ">=", 0.0, False),
    ],
)
def test_each_comparison_holds_exactly_at_its_boundary(value, comparison, limit, expected):
    assert holds(value, comparison, limit) is expected
    assert Threshold.judge("m", "k.k", value, comparison, limit).passed is expected


def test_a_check_built_from_thresholds_passes_only_when_all_hold():
    ok = Threshold.judge("a", "load.max_p95_ms", 1.0, "<=", 2.0)
    bad = Threshold.judge("b", "load.max_rss_mb", 3.0, "<=", 2.0)
    assert CheckResult.judged("load", [ok]).passed is True
    result = CheckResult.judged("load", [ok, bad])
    assert result.passed is False
    assert (result.value, result.limit) == (1.0, 2.0)  # headline = first threshold


def test_the_decision_is_pure_and_round_trips_through_json(policy, tmp_path):
    checks = passing_checks(policy)
    checks = replace(checks, with_value(by_name(checks, "bias"), "macro_f1_gap", 0.6))
    before = [c.model_dump() for c in checks]
    first, second = decide(policy, checks), decide(policy, checks)
    assert first.failures == second.failures
    assert [c.model_dump() for c in checks] == before
    path = first.write_json(tmp_path / "gate_decision.json")
    assert GateDecision.read_json(path) == first


def test_the_description_names_the_verdict_and_every_failure(policy):
    checks = passing_checks(policy)
    checks = replace(checks, with_value(by_name(checks, "bias"), "macro_f1_gap", 0.6))
    checks = replace(checks, CheckResult.failed("drift", "boom"))
    text = describe(decide(policy, checks, adapter="x:1"))
    assert text.splitlines()[0].startswith(f"gate FAILED under policy {policy.version}")
    assert "bias: macro_f1_gap = 0.6, policy bias.max_gap requires <= 0.25" in text
    assert "drift: check errored: boom" in text
    assert "  quality  pass" in text


@pytest.mark.parametrize("key", ["load.nope", "nope.max_p95_ms", "version", "promotion.four_eyes_production", "load"])
def test_asking_the_policy_for_a_limit_it_does_not_hold_is_refused(policy, key):
    with pytest.raises(ConfigError, match="policy has no numeric limit"):
        policy.limit(key)


def test_load_on_a_machine_too_busy_is_not_judged_rather_than_failed(policy):
    checks = passing_checks(policy)
    noisy = with_value(by_name(checks, "load"), "base_spread", 9.0)
    noisy = with_value(noisy, "p95_ratio", 50.0)  # not read: the spread says the ratios mean nothing
    decision = decide(policy, replace(checks, noisy))
    assert decision.passed is False and decision.failures == []
    assert len(decision.not_judged) == 1
    assert decision.not_judged[0].startswith("load: not judged: machine too busy (base_spread 9 is not <= 3")
    text = describe(decision)
    assert text.startswith("gate NOT JUDGED") and "tailor judge-load NAME VERSION" in text
    assert "  load     NOT JUDGED" in text


def test_a_busy_machine_leaves_only_the_noise_tied_limits_unread(policy):
    checks = passing_checks(policy)
    noisy = with_value(by_name(checks, "load"), "base_spread", 9.0)
    noisy = with_value(noisy, "adapter_mb", 999.0)  # memory does not depend on how busy the machine is
    noisy = with_value(noisy, "throughput_ratio", 0.1)  # over many rows, base and candidate interleaved
    noisy = with_value(noisy, "p95_ratio", 5.0)  # a tail at one row: the spread says it means nothing now
    decision = decide(policy, replace(checks, noisy))
    assert decision.passed is False
    assert sorted(f.metric for f in decision.failures) == ["adapter_mb", "throughput_ratio"]
    assert "load.max_p95_ratio, load.max_p95_ms not read" in decision.not_judged[0]
    text = describe(decision)
    assert text.startswith("gate FAILED") and "  load     FAIL" in text


def test_a_retrain_whose_load_was_not_judged_says_so_rather_than_failed(policy):
    from types import SimpleNamespace

    from pipelines.cli.retrain import describe as describe_retrain

    checks = passing_checks(policy)
    decision = decide(policy, replace(checks, with_value(by_name(checks, "load"), "base_spread", 9.0)))
    assert decision.verdict == "not judged"
    outcome = SimpleNamespace(
        name="tickets", status="registered", total_seconds=3.0, version="v4", gate=decision, promoted_to=[], notes=[]
    )
    assert "registered tickets v4, gate NOT JUDGED" in describe_retrain(outcome)


def test_a_load_check_recorded_before_the_ratios_says_so_rather_than_cut_down(policy):
    checks = passing_checks(policy)
    older = by_name(checks, "load").model_copy(
        update={
            "thresholds": [
                Threshold.judge("p95_ms", "load.max_p95_ms", 40.0, "<=", 250.0),
                Threshold.judge("rss_mb", "load.max_rss_mb", 500.0, "<=", 2048.0),
                Threshold.judge("adapter_mb", "load.max_adapter_mb", 1.0, "<=", 20.0),
            ]
        }
    )
    [failure] = decide(policy, replace(checks, older)).failures
    assert "measured before the load check timed the bare base model" in failure.reason
    assert "cut down" not in failure.reason and "tailor evaluate" in failure.reason


def test_a_policy_that_tolerates_more_spread_judges_the_same_measurements(policy):
    checks = replace(passing_checks(policy), with_value(by_name(passing_checks(policy), "load"), "base_spread", 9.0))
    tolerant = policy.model_copy(update={"load": policy.load.model_copy(update={"max_base_spread": 10.0})})
    assert decide(tolerant, checks).passed is True


def test_a_failure_elsewhere_still_fails_a_gate_whose_load_was_not_judged(policy):
    checks = passing_checks(policy)
    checks = replace(checks, with_value(by_name(checks, "load"), "base_spread", 9.0))
    checks = replace(checks, with_value(by_name(checks, "quality"), "macro_f1", 0.1))
    decision = decide(policy, checks)
    assert [f.metric for f in decision.failures] == ["macro_f1"] and decision.not_judged
    assert describe(decision).startswith("gate FAILED")
