"""Training keeps the fine-tuned adapter or the frozen probe, whichever scores higher out of fold on the
batch: the fold plan and the choice (whole runs: tests/integration/pipelines/training/test_train_select_runs.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.training.params import TrainParams
from pipelines.training.select import (
    UNSCORED,
    Tally,
    choose,
    default_recipe,
    fold_order,
    plan_folds,
    settled,
    switches,
)


def test_folds_are_stratified_disjoint_and_cover_every_row_when_the_budget_allows():
    y = np.repeat([0, 1, 2], [8, 8, 5])
    plan = plan_folds(y, TrainParams(select_folds=4), final_steps=30, seed=0)
    assert plan.planned == len(plan.folds) == 4
    held = np.concatenate([h for _, h in plan.folds])
    assert sorted(held.tolist()) == list(range(len(y)))  # every row held out exactly once
    for train, h in plan.folds:
        assert not set(train) & set(h) and len(train) + len(h) == len(y)
        assert set(y[h]) == {0, 1, 2}  # each class in each held-out part


def test_a_class_smaller_than_the_folds_lowers_their_number_and_a_single_row_is_never_held_out():
    assert plan_folds(np.repeat([0, 1], [10, 3]), TrainParams(select_folds=4), 30, seed=0).planned == 3
    single = plan_folds(np.array([0, 0, 0, 1]), TrainParams(), 30, seed=0)
    assert single.planned == 3 and all(3 in train for train, _ in single.folds)  # the lone row is never held out
    assert plan_folds(np.array([0, 1, 2]), TrainParams(), 30, seed=0).skipped == "no class has two rows to split"


def test_a_fold_always_runs_the_full_recipe_and_is_skipped_when_that_does_not_fit_the_budget():
    y = np.repeat(np.arange(77), 16)  # 1,232 rows: the final run visits 154 steps x 32 rows
    params = TrainParams(select_cost=0.3, select_min_visits=1000)
    plan = plan_folds(y, params, final_steps=params.steps_for(len(y)), seed=0)
    assert plan.folds == [] and plan.planned == 4 and plan.steps == params.steps_for(924)
    assert "costs more than the budget" in plan.skipped
    one = plan_folds(y, TrainParams(select_cost=0.8), final_steps=154, seed=0)
    assert len(one.folds) == 1 and one.steps == params.steps_for(924)  # never fewer steps than the recipe's
    generous = plan_folds(y, TrainParams(select_cost=10.0), final_steps=154, seed=0)
    assert len(generous.folds) == 4 and generous.steps == params.steps_for(924)


def test_a_tiny_batch_gets_every_fold_at_the_full_recipe():
    y = np.repeat([0, 1], 16)
    params = TrainParams()
    plan = plan_folds(y, params, final_steps=params.steps_for(32), seed=0)
    assert len(plan.folds) == 4 and plan.steps == params.steps_for(24)


def test_the_default_is_fine_tuning_on_a_large_batch_and_the_probe_on_a_tiny_one():
    params = TrainParams()
    assert default_recipe(616, 77, params) == "lora"  # Banking77 at 8 per class
    assert default_recipe(120, 30, params) == "lora"  # many classes
    assert default_recipe(32, 2, params) == "probe"


def _predictions(n: int, b: int, c: int, both_wrong: int = 0):
    """Truth, probe and fine-tuned predictions with b rows only fine-tuning gets right and c only the probe."""
    y = np.repeat([0, 1], n // 2)
    lora, probe = y.copy(), y.copy()
    probe[:b] = 1 - y[:b]
    lora[b : b + c] = 1 - y[b : b + c]
    lora[b + c : b + c + both_wrong] = probe[b + c : b + c + both_wrong] = 1 - y[b + c : b + c + both_wrong]
    return y, {"probe": probe, "lora": lora}


def test_the_other_recipe_replaces_the_default_only_beyond_the_paired_noise_in_rows():
    y, pred = _predictions(100, b=8, c=0)  # 8-to-0: 8 > sqrt(8) + 1 = 3.83
    sel = choose(y, pred, z=1.0, default="probe")
    assert sel.kept == "lora" and (sel.lora_only_right, sel.probe_only_right) == (8, 0)
    assert sel.rows_needed == pytest.approx(np.sqrt(8) + 1, abs=1e-3) and sel.rows_scored == 100
    assert choose(y, pred, z=3.0, default="probe").kept == "probe"  # 8 < 3 x 2.83 + 1
    assert choose(y, pred, z=1.0, default="lora").kept == "lora"  # the probe does not lead at all
    y, pred = _predictions(100, b=0, c=8)
    assert choose(y, pred, z=1.0, default="lora").kept == "probe"  # on a large batch the probe must lead clearly
    y, pred = _predictions(100, b=3, c=5)
    assert choose(y, pred, z=1.0, default="lora").kept == "lora"  # 2 rows is noise either way
    assert choose(y, pred, z=0.0, default="probe").kept == "probe"  # a tie keeps the default


def test_a_large_macro_f1_lead_from_two_rows_of_a_small_class_is_noise():
    """40 rows, 36 of one class and 4 of another: the probe is wrong on 3 of the minority, fine-tuning on 1.
    Macro-F1 leads by about 0.24, but that is a 2-to-0 split of the discordant rows."""
    y = np.repeat([0, 1], [36, 4])
    probe, lora = y.copy(), y.copy()
    probe[36:39] = 0
    lora[36] = 0
    sel = choose(y, {"probe": probe, "lora": lora}, z=1.0, default="probe")
    assert sel.estimates["lora"] - sel.estimates["probe"] > 0.2
    assert (sel.lora_only_right, sel.probe_only_right) == (2, 0) and sel.kept == "probe"
    assert "does not lead it" in sel.reason


def test_a_fold_probe_missing_a_class_keeps_one_logit_per_label_and_never_predicts_the_absent_one():
    from pipelines.training.objective import logreg_head

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8))
    y = np.repeat([0, 2, 3], 10)  # class 1 has no row here
    x[y == 2] += 3
    head = torch.nn.Linear(8, 4)
    logreg_head(head, x, y, C=10.0, seed=0)
    predicted = head(torch.from_numpy(x).float()).argmax(-1).numpy()
    assert 1 not in predicted and (predicted == y).mean() > 0.9
    assert torch.count_nonzero(head.weight[1]) == 0


def _kept(b: int, c: int, z: float, default: str) -> str:
    """McNemar's rule as the docstring of ``choose`` states it, written out independently."""
    lead = b - c if default == "probe" else c - b
    other = "lora" if default == "probe" else "probe"
    return other if lead > z * np.sqrt(b + c) + 1 else default


@pytest.mark.parametrize("default", ["probe", "lora"])
@pytest.mark.parametrize("z", [0.0, 1.0, 3.0])
def test_settled_exactly_when_every_result_of_the_unscored_rows_keeps_the_same_recipe(default, z):
    """Every tally of up to 6 in each count: the bound agrees with trying every way the unscored rows can
    fall (each row the probe got wrong can add one to b, each it got right one to c)."""
    for b, c, wrong_left, right_left in np.ndindex(7, 7, 7, 7):
        outcomes = {_kept(b + x, c + y, z, default) for x in range(wrong_left + 1) for y in range(right_left + 1)}
        assert settled(Tally(b, c, wrong_left, right_left), z, default) == (len(outcomes) == 1), (
            b,
            c,
            wrong_left,
            right_left,
        )


def test_at_the_default_threshold_fine_tuning_needs_a_five_to_nothing_lead_to_replace_the_probe():
    """One-sided 5 %: a probe with four errors out of fold settles before any fold is fine-tuned (at 1.0 a
    3-to-0 lead on 16 rows had replaced the probe, which then lost 0.063 on 200 test rows)."""
    z = TrainParams().select_z
    assert not switches(3, 0, z) and not switches(4, 0, z) and switches(5, 0, z) and not switches(6, 1, z)
    assert settled(Tally(b=0, c=0, probe_wrong_left=4, probe_right_left=12), z, "probe")
    assert not settled(Tally(b=0, c=0, probe_wrong_left=5, probe_right_left=11), z, "probe")


def test_a_probe_with_two_errors_out_of_fold_settles_before_any_fold_is_fine_tuned():
    """A 2-to-0 split is noise (2 < sqrt(2) + 1), so fine-tuning cannot win where the probe errs twice."""
    assert settled(Tally(b=0, c=0, probe_wrong_left=2, probe_right_left=30), 1.0, "probe")
    assert not settled(Tally(b=0, c=0, probe_wrong_left=3, probe_right_left=29), 1.0, "probe")
    assert settled(Tally(b=0, c=1, probe_wrong_left=3, probe_right_left=20), 1.0, "probe")  # 3-to-1: no lead
    # on a large batch the probe must win clearly: with fine-tuning ahead 10-to-0, 8 rows cannot get it there
    assert settled(Tally(b=10, c=0, probe_wrong_left=0, probe_right_left=8), 1.0, "lora")
    assert not settled(Tally(b=10, c=0, probe_wrong_left=0, probe_right_left=40), 1.0, "lora")


def test_tally_counts_only_scored_rows_and_what_the_unscored_can_add():
    y = np.array([0, 1, 0, 1, 0, 1])
    probe = np.array([0, 0, 1, 1, 0, 1])  # wrong on rows 1 and 2
    lora = np.array([0, 1, 0, 0, UNSCORED, UNSCORED])  # b: rows 1, 2; c: row 3; rows 4, 5 unscored
    assert Tally.of(y, probe, lora) == Tally(b=2, c=1, probe_wrong_left=0, probe_right_left=2)
    probe[5] = 0
    assert Tally.of(y, probe, lora) == Tally(b=2, c=1, probe_wrong_left=1, probe_right_left=1)


def test_folds_run_where_the_challenger_could_win_most_rows_first():
    right = [np.array([True, True, False]), np.array([False, False, False]), np.array([True, True, True])]
    assert fold_order(right, "probe") == [1, 0, 2]  # fine-tuning challenges: the probe's errors first
    assert fold_order(right, "lora") == [2, 0, 1]  # the probe challenges: its right answers first


def test_choose_on_folds_left_unscored_reports_the_scored_rows_and_why_the_rest_did_not_run():
    y, pred = _predictions(40, b=1, c=2)
    pred["lora"][20:] = UNSCORED  # the probe is right on all of these: fine-tuning cannot gain there
    sel = choose(y, pred, z=1.0, default="probe")
    assert sel.kept == "probe" and sel.rows_scored == 20 and (sel.lora_only_right, sel.probe_only_right) == (1, 2)
    assert "not run on the other 20 held-out rows: the probe was wrong on 0 of them" in sel.reason
    assert set(sel.estimates) == {"probe", "lora"}
    y, pred = _predictions(40, b=0, c=0)
    pred["lora"][:] = UNSCORED
    assert choose(y, pred, z=1.0, default="probe").estimates == {}  # settled before any fold: no paired estimate
    y, pred = _predictions(40, b=6, c=0)
    pred["lora"][:] = UNSCORED  # the probe's 6 errors could all go to fine-tuning: not settled
    with pytest.raises(ValueError, match="could still change the outcome"):
        choose(y, pred, z=1.0, default="probe")


def test_continuing_the_fold_takes_the_steps_left_but_one_pass_over_every_row_and_never_more_than_the_recipe():
    from pipelines.training.select import continued_steps

    assert continued_steps(final_steps=77, fold_steps=58, rows=616, batch_size=32) == 20  # Banking77 8/class
    assert continued_steps(final_steps=100, fold_steps=58, rows=616, batch_size=32) == 42  # the steps left
    assert continued_steps(final_steps=10, fold_steps=10, rows=616, batch_size=32) == 10  # epochs < 1: the budget
    assert continued_steps(final_steps=30, fold_steps=30, rows=20, batch_size=32) == 1  # one step holds every row
