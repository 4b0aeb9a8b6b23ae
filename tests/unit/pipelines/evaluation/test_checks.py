"""Each check turns its evidence into thresholds the policy judges; no model is needed here."""

import json

import numpy as np
import pytest

from pipelines.evaluation.checks import bias, cost, drift, load, quality
from pipelines.evaluation.checks.report import finish
from pipelines.metrics import quality_metrics
from pipelines.policy import BiasPolicy, CostPolicy, DriftPolicy, LoadPolicy, QualityPolicy, load_policy
from pipelines.records import CheckResult, CostReport, LabeledBatch, Threshold, TrainResult
from registry.errors import ConfigError, NotFoundError, RefusedError

LABELS = ["card_lost", "refund_request", "login_problem", "delivery_delay"]


def batch(labels: list[str], groups: list[str] | None = None) -> LabeledBatch:
    return LabeledBatch(
        source="test",
        texts=[f"text {i}" for i in range(len(labels))],
        labels=labels,
        groups=groups,
        ids=[str(i) for i in range(len(labels))],
    )


def holdout(n_per_class: int = 10) -> LabeledBatch:
    return batch([label for label in LABELS for _ in range(n_per_class)])


def corrupt(labels: list[str], every: int, offset: int = 0) -> list[str]:
    """Every ``every``-th prediction (from ``offset``) replaced by the next label: a known error count."""
    return [LABELS[(LABELS.index(y) + 1) % 4] if (i - offset) % every == 0 else y for i, y in enumerate(labels)]


# ---- quality -------------------------------------------------------------------------------------


def test_quality_without_production_is_judged_on_the_floor_only_and_says_so():
    h = holdout()
    result = quality.run(h, list(h.labels), LABELS, QualityPolicy())
    assert result.passed is True
    assert [t.metric for t in result.thresholds] == ["macro_f1", "holdout_size", "label_coverage"]
    assert result.value == 1.0 and result.details["production"] is None
    assert "not compared with a production version: judged on the floor only" in result.details["summary"]
    assert len(result.details["per_class"]) == 4 and result.details["confusion"][0] == [10, 0, 0, 0]


def test_a_baseline_that_beats_the_candidate_beyond_the_interval_fails_it_naming_the_baseline_and_both_scores():
    h = holdout(25)
    weak = corrupt(list(h.labels), every=3)  # a third wrong
    perfect = list(h.labels)
    result = quality.run(h, weak, LABELS, QualityPolicy(), baseline_pred={"lexical": perfect, "probe": weak})
    failed = [t for t in result.thresholds if not t.passed]
    assert [t.metric for t in failed] == ["macro_f1_loss_to_lexical_baseline_lower"]
    assert failed[0].policy_key == "quality.max_loss_to_baseline" and failed[0].value > 0
    lexical = result.details["baselines"]["lexical"]
    assert lexical["macro_f1"] == 1.0 and lexical["diff_ci_high"] < 0
    assert lexical["interval"] == [lexical["diff_ci_low"], lexical["diff_ci_high"]]
    assert result.details["baselines"]["probe"]["diff"] == 0.0  # identical predictions: a tie passes
    assert "the lexical baseline beats it: 1.000 against 0.6" in result.details["summary"]


def test_a_candidate_the_baselines_do_not_beat_beyond_the_interval_passes():
    h = holdout(10)
    slightly_worse = corrupt(list(h.labels), every=20)  # 2 rows of 40: within the noise of 40 rows
    result = quality.run(h, slightly_worse, LABELS, QualityPolicy(), baseline_pred={"lexical": list(h.labels)})
    assert result.passed and "lexical baseline 1.000" in result.details["summary"]


def test_quality_names_holdout_labels_the_adapter_was_not_trained_on():
    h = batch(["refund_requets"] * 3 + list(holdout().labels[3:]))
    result = quality.run(h, list(holdout().labels), LABELS, QualityPolicy())
    assert result.details["unknown_labels"] == ["refund_requets"]
    assert (
        "3 holdout rows labelled with 'refund_requets', which the adapter was not trained on"
        in result.details["summary"]
    )
    assert quality.run(holdout(), list(holdout().labels), LABELS, QualityPolicy()).details["unknown_labels"] == []


def test_holdout_rows_the_candidate_was_trained_on_fail_the_quality_check_by_id():
    h = holdout()
    trained = ["something else entirely", "TEXT 0!", "text 5"]  # rows 0 and 5, after normalising
    result = quality.run(h, list(h.labels), LABELS, QualityPolicy(), trained_texts=trained)
    assert result.passed is False
    [share] = [t for t in result.thresholds if t.metric == "holdout_trained_share"]
    assert (share.value, share.policy_key, share.passed) == (2 / 40, "quality.max_holdout_trained_share", False)
    assert result.details["holdout_rows_trained_on"] == ["0", "5"]
    assert "2 holdout rows (id 0, 5) the adapter was trained on" in result.details["summary"]
    tolerant = quality.run(
        h, list(h.labels), LABELS, QualityPolicy(max_holdout_trained_share=0.05), trained_texts=trained
    )
    assert tolerant.passed is True


def test_a_holdout_of_one_row_repeated_counts_as_one_example():
    h = batch(["card_lost"] * 30)
    h = h.model_copy(update={"texts": ["my card is gone"] * 30})
    result = quality.run(h, list(h.labels), LABELS, QualityPolicy(min_label_coverage=0.0))
    [size] = [t for t in result.thresholds if t.metric == "holdout_size"]
    assert (size.value, size.passed) == (1.0, False)
    assert "1 distinct texts among them" in result.details["summary"]


def test_a_holdout_without_rows_of_some_labels_fails_coverage_however_well_it_scores():
    h = batch([LABELS[0]] * 40)
    result = quality.run(h, list(h.labels), LABELS, QualityPolicy())
    assert result.value == 1.0 and result.passed is False
    [coverage] = [t for t in result.thresholds if not t.passed]
    assert (coverage.metric, coverage.value) == ("label_coverage", 0.25)
    assert result.details["labels_without_rows"] == sorted(LABELS[1:])
    assert "no row of 3 of the adapter's 4 labels" in result.details["summary"]


def test_quality_below_the_floor_fails_with_value_and_limit():
    h = holdout()
    result = quality.run(h, corrupt(h.labels, 2), LABELS, QualityPolicy(min_macro_f1=0.6))
    failed = [t for t in result.thresholds if not t.passed]
    assert [(t.metric, t.limit) for t in failed] == [("macro_f1", 0.6)]
    assert failed[0].value == pytest.approx(0.5)


def test_a_holdout_smaller_than_the_minimum_fails_even_with_perfect_scores():
    h = holdout(n_per_class=2)
    result = quality.run(h, list(h.labels), LABELS, QualityPolicy(min_holdout_size=30))
    assert result.passed is False
    assert [t.metric for t in result.thresholds if not t.passed] == ["holdout_size"]


def test_a_clearly_worse_candidate_fails_the_regression_limit_judged_on_the_interval():
    h = holdout(25)
    result = quality.run(
        h, corrupt(h.labels, 3), LABELS, QualityPolicy(), production_pred=list(h.labels), production="tickets:v1"
    )
    comparison = result.details["production"]
    assert comparison["ref"] == "tickets:v1"
    assert comparison["diff"] < 0 and comparison["diff_ci_low"] <= comparison["diff"] <= comparison["diff_ci_high"]
    drop = next(t for t in result.thresholds if t.metric == "macro_f1_drop_upper")
    assert drop.passed is False and drop.value == pytest.approx(-comparison["diff_ci_low"])
    assert drop.policy_key == "quality.max_regression"


def test_a_small_holdout_cannot_pass_a_candidate_on_noise():
    # 40 rows; the candidate is a hair better on the point estimate, but the two models disagree on
    # enough rows that the interval's lower bound is far below -max_regression.
    h = holdout()
    prod = corrupt(h.labels, 5)
    cand = corrupt(h.labels, 6, offset=1)
    result = quality.run(h, cand, LABELS, QualityPolicy(max_regression=0.02), production_pred=prod)
    comparison = result.details["production"]
    assert comparison["diff"] >= 0
    assert comparison["diff_ci_low"] < -0.02
    assert [t.metric for t in result.thresholds if not t.passed] == ["macro_f1_drop_upper"]


def test_an_identical_candidate_passes_the_comparison_with_a_zero_width_interval():
    h = holdout()
    pred = corrupt(h.labels, 7)
    result = quality.run(h, pred, LABELS, QualityPolicy(), production_pred=pred)
    comparison = result.details["production"]
    assert (comparison["diff_ci_low"], comparison["diff_ci_high"], comparison["disagreements"]) == (0.0, 0.0, 0)
    assert result.passed is True


def test_the_bootstrap_scores_macro_f1_exactly_as_quality_metrics_does():
    rng = np.random.default_rng(3)
    truth = [LABELS[i] for i in rng.integers(0, 4, 60)]
    cand = [LABELS[i] if rng.random() < 0.7 else "unknown" for i in rng.integers(0, 4, 60)]
    prod = [LABELS[i] for i in rng.integers(0, 3, 60)]
    out = quality.paired_bootstrap(truth, cand, prod, samples=200, confidence=0.9, seed=1)
    assert out["candidate_macro_f1"] == pytest.approx(quality_metrics(truth, cand, LABELS).macro_f1)
    assert out["production_macro_f1"] == pytest.approx(quality_metrics(truth, prod, LABELS).macro_f1)
    again = quality.paired_bootstrap(truth, cand, prod, samples=200, confidence=0.9, seed=1)
    assert again == out  # seeded: the same evidence gives the same interval


def test_quality_refuses_production_predictions_of_the_wrong_length():
    h = holdout()
    with pytest.raises(ValueError, match="production predicted 3 rows, the holdout has 40"):
        quality.run(h, list(h.labels), LABELS, QualityPolicy(), production_pred=LABELS[:3])


def test_quality_writes_its_evidence_into_the_adapter_folder(tmp_path):
    h = holdout()
    result = quality.run(h, list(h.labels), LABELS, QualityPolicy(), out_dir=tmp_path)
    assert result.evidence == ["reports/quality.json"]
    stored = CheckResult.read_json(tmp_path / "reports" / "quality.json")
    assert stored.details["macro_f1"] == 1.0 and stored.thresholds == result.thresholds


# ---- bias ----------------------------------------------------------------------------------------


def grouped_holdout() -> LabeledBatch:
    labels = [label for label in LABELS for _ in range(9)]  # 36 rows
    groups = ["email", "chat", "phone"] * 12
    return batch(labels, groups)


def test_a_group_with_a_much_worse_score_fails_bias_naming_the_group():
    h = grouped_holdout()
    pred = [
        LABELS[(LABELS.index(y) + 1) % 4] if g == "phone" and i % 2 == 0 else y
        for i, (y, g) in enumerate(zip(h.labels, h.groups))
    ]
    result = bias.run(h, pred, LABELS, BiasPolicy(max_gap=0.25, min_group_size=10))
    assert result.passed is False
    assert result.details["worst_group"] == "phone"
    assert result.details["groups"]["phone"]["macro_f1"] < 0.7 <= result.details["groups"]["chat"]["macro_f1"]
    assert "worst group 'phone'" in result.details["summary"]
    assert result.thresholds[0].policy_key == "bias.max_gap" and result.value == pytest.approx(result.details["gap"])


def test_equal_groups_pass_bias():
    h = grouped_holdout()
    result = bias.run(h, corrupt(h.labels, 2), LABELS, BiasPolicy(max_gap=0.25, min_group_size=10))
    assert result.passed is True and result.value <= 0.25


def test_groups_under_the_minimum_size_are_reported_not_judged():
    h = grouped_holdout()
    groups = list(h.groups[:-4]) + ["fax"] * 4
    h = h.model_copy(update={"groups": groups})
    pred = [LABELS[(LABELS.index(y) + 1) % 4] if g == "fax" else y for y, g in zip(h.labels, h.groups)]
    result = bias.run(h, pred, LABELS, BiasPolicy(max_gap=0.25, min_group_size=10))
    assert result.passed is True
    assert result.details["groups"]["fax"] == {"rows": 4, "macro_f1": 0.0, "accuracy": 0.0, "judged": False}
    assert "reported only (under 10 rows): fax" in result.details["summary"]


def test_rows_without_a_group_value_are_no_group_and_many_small_groups_keep_the_summary_short():
    h = grouped_holdout()
    groups = [""] * 6 + [f"cust{i}" for i in range(20)] + list(h.groups[26:])
    h = h.model_copy(update={"groups": groups})
    result = bias.run(h, list(h.labels), LABELS, BiasPolicy(min_group_size=10))
    assert "" not in result.details["groups"] and result.details["rows_without_group"] == 6
    assert len([g for g in result.details["groups"] if g.startswith("cust")]) == 20
    summary = result.details["summary"]
    assert "cust0, cust1, cust10" in summary and "… (23 in all)" in summary and "cust9" not in summary
    assert "6 rows without a group value, in none" in summary


@pytest.mark.parametrize(
    ("groups", "why"),
    [(None, "no group column: not judged"), (["email"] * 36, "fewer than two to compare, not judged")],
)
def test_bias_is_not_judged_without_two_groups_to_compare(groups, why):
    h = grouped_holdout().model_copy(update={"groups": groups})
    result = bias.run(h, list(h.labels), LABELS, BiasPolicy())
    assert result.passed is True and result.thresholds == []
    assert why in result.details["summary"]


# ---- cost ----------------------------------------------------------------------------------------


def train_result(**cost) -> TrainResult:
    report = CostReport(
        **{
            "wall_seconds": 42.0,
            "cpu_seconds": 80.0,
            "peak_rss_mb": 650.0,
            "trainable_params": 74000,
            "adapter_bytes": 300000,
            "examples_per_second": 3.0,
            "money": 0.002,
            **cost,
        }
    )
    return TrainResult(
        adapter_dir="a",
        base_model_id="m",
        base_model_sha256="0" * 64,
        labels=LABELS,
        params={},
        seed=0,
        device="cpu",
        train_examples=112,
        cost=report,
        adapter_sha256="1" * 64,
    )


def test_cost_within_every_limit_passes():
    result = cost.run(train_result(), CostPolicy())
    assert result.passed is True
    assert [t.policy_key for t in result.thresholds] == [
        "cost.max_train_seconds",
        "cost.max_peak_rss_mb",
        "cost.max_money",
    ]
    assert "112 examples in 42.0 s (80.0 s CPU, wall judged)" in result.details["summary"]


def test_cost_judges_cpu_time_where_the_policy_says_so():
    stretched = train_result(wall_seconds=1200.0, cpu_seconds=300.0)  # a busy host: waiting, not working
    assert not cost.run(stretched, CostPolicy(max_train_seconds=900)).passed
    judged = cost.run(stretched, CostPolicy(max_train_seconds=900, train_time="cpu"))
    assert judged.passed and judged.thresholds[0].value == 300.0 and judged.details["train_time"] == "cpu"
    runaway = cost.run(train_result(wall_seconds=600.0, cpu_seconds=1100.0), CostPolicy(train_time="cpu"))
    assert [(t.metric, t.value) for t in runaway.thresholds if not t.passed] == [("train_seconds", 1100.0)]


def test_a_policy_naming_another_train_time_is_refused(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('version: "1"\ncost:\n  train_time: process\n')
    with pytest.raises(ConfigError, match="train_time"):
        load_policy(path)


def test_cost_lists_every_limit_it_exceeds():
    result = cost.run(train_result(wall_seconds=5000.0, money=3.5), CostPolicy(max_train_seconds=900, max_money=1))
    assert [(t.metric, t.value, t.limit) for t in result.thresholds if not t.passed] == [
        ("train_seconds", 5000.0, 900.0),
        ("money", 3.5, 1.0),
    ]


def test_cost_reads_the_train_result_from_the_adapter_folder(tmp_path):
    with pytest.raises(NotFoundError, match="no train_result.json"):
        cost.read_train_result(tmp_path)
    train_result().write_json(tmp_path / "train_result.json")
    assert cost.read_train_result(tmp_path).cost.wall_seconds == 42.0
    (tmp_path / "train_result.json").write_text('{"cost": {}}')
    with pytest.raises(ConfigError, match="is not a valid TrainResult"):
        cost.read_train_result(tmp_path)


# ---- operating load ------------------------------------------------------------------------------

MEASURED = {
    "import_seconds": 4.0,
    "load_seconds": 1.5,
    "p50_ms": 20.0,
    "p95_ms": 31.0,
    "throughput_per_s": 110.0,
    "base_p50_ms": 18.0,
    "base_p95_ms": 27.0,
    "base_throughput_per_s": 130.0,
    "p50_ratio": 20 / 18,
    "p95_ratio": 31 / 27,
    "throughput_ratio": 110 / 130,
    "base_spread": 1.5,
    "rss_mb": 520.0,
    "base_rss_mb": 480.0,
    "load_average_before": 3.1,
    "load_average_after": 3.3,
    "cpu_count": 2.0,
    "latency_calls": 60,
    "throughput_batch": 32,
    "adapter_mb": 0.43,
}


def test_load_is_judged_relative_to_the_bare_base_and_reports_the_machine_load():
    result = load.run({**MEASURED, "p95_ratio": 3.0, "throughput_ratio": 0.3}, LoadPolicy())
    assert result.passed is False
    assert [(t.metric, t.limit) for t in result.thresholds if not t.passed] == [
        ("p95_ratio", 1.5),
        ("throughput_ratio", 0.5),
    ]
    assert "p95 3.00x" in result.details["summary"] and "load average 3.1 on 2 cores" in result.details["summary"]


def test_an_absolute_latency_limit_is_judged_only_on_its_reference_host():
    policy = LoadPolicy(max_p95_ms=0.001, reference_host="ref-box")
    assert [t.metric for t in load.run(MEASURED, policy, host="ref-box").thresholds if not t.passed] == ["p95_ms"]
    elsewhere = load.run(MEASURED, policy, host="shared-box")
    assert elsewhere.passed and "p95_ms" not in [t.metric for t in elsewhere.thresholds]
    assert elsewhere.details["absolute_limits"] == "not judged: reference host ref-box, measured on shared-box"


def test_load_judges_memory_and_adapter_size_too():
    result = load.run({**MEASURED, "rss_mb": 5000.0, "adapter_mb": 90.0}, LoadPolicy())
    assert [t.metric for t in result.thresholds if not t.passed] == ["rss_mb", "adapter_mb"]


def test_adapter_size_counts_its_safetensors_files(tmp_path):
    (tmp_path / "adapter_model.safetensors").write_bytes(b"x" * 2**20)
    (tmp_path / "reference.csv").write_bytes(b"y" * 2**20)
    assert load.adapter_mb(tmp_path) == pytest.approx(1.0)


# ---- drift (the parts that need no model) ----------------------------------------------------------


def test_drift_is_not_judged_without_a_production_reference(tmp_path):
    result = drift.run(holdout(), None, tmp_path / "no-model", DriftPolicy(), out_dir=tmp_path)
    assert result.passed is True and result.thresholds == []
    assert result.details["summary"] == "not compared with a production version: not judged"
    assert result.evidence == ["reports/drift.json"]


def test_drift_on_a_tiny_batch_is_reported_not_judged(tmp_path):
    result = drift.run(holdout(1), holdout(), tmp_path / "no-model", DriftPolicy(min_rows=10))
    assert result.passed is True and result.thresholds == []
    assert "40 reference vs 4 current rows, under 10" in result.details["summary"]


# ---- shared -------------------------------------------------------------------------------------


def test_every_check_keeps_its_result_as_json_evidence(tmp_path):
    t = Threshold.judge("m", "load.max_p95_ms", 1.0, "<=", 2.0)
    result = finish("load", [t], {"summary": "s"}, out_dir=tmp_path, evidence=["reports/extra.html"])
    assert result.evidence == ["reports/load.json", "reports/extra.html"]
    assert (
        json.loads((tmp_path / "reports" / "load.json").read_text(encoding="utf-8"))["thresholds"][0]["metric"] == "m"
    )
    assert finish("load", [t], {}, out_dir=None).evidence == []


def test_every_threshold_a_check_uses_names_a_limit_of_the_shipped_policy():
    policy = load_policy()
    h = grouped_holdout()
    results = [
        quality.run(h, list(h.labels), LABELS, policy.quality, production_pred=list(h.labels)),
        bias.run(h, list(h.labels), LABELS, policy.bias),
        cost.run(train_result(), policy.cost),
        load.run(MEASURED, policy.load),
    ]
    for result in results:
        for t in result.thresholds:
            assert policy.limit(t.policy_key) == t.limit


def test_a_holdout_with_blank_rows_or_repeated_ids_is_refused_before_any_model_loads():
    from pipelines.evaluation.checks.suite import _require_scorable

    blank = batch(LABELS * 2).model_copy(
        update={"texts": ["a", " ", "c", "d", "e", "f", "g", "h"], "labels": LABELS + ["", *LABELS[1:]]}
    )
    with pytest.raises(RefusedError, match="2 holdout row\\(s\\) have an empty text or label \\(ids 1, 4\\)"):
        _require_scorable(blank)
    twice = batch(LABELS).model_copy(update={"ids": ["h1", "h2", "h1", "h3"]})
    with pytest.raises(RefusedError, match="holdout ids repeat \\(h1\\)"):
        _require_scorable(twice)
    _require_scorable(batch(LABELS))
