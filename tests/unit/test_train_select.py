"""Training keeps the fine-tuned adapter or the frozen probe, whichever scores higher out of fold on the
batch: the fold plan, the choice, and a whole run on a tiny random-weight encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.training.params import TrainParams
from pipelines.training.select import choose, default_recipe, plan_folds


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


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A 2-block BERT with random weights and a word-level vocabulary: seconds to train."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from registry.fingerprint import BaseModelFingerprint
    from serving.model import LoadedBase

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(40)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(0)
    encoder = BertModel(
        BertConfig(
            vocab_size=len(words),
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=32,
        ),
        add_pooling_layer=False,
    )
    encoder.requires_grad_(False).eval()
    fp = BaseModelFingerprint(model_id="tiny", weights_sha256="0" * 64, tokenizer_sha256="1" * 64)
    return LoadedBase(
        model_dir=tmp_path_factory.mktemp("tiny"), device="cpu", tokenizer=tokenizer, encoder=encoder, fingerprint=fp
    )


def test_a_batch_whose_labels_are_noise_keeps_the_probe_as_a_zero_delta_adapter(tiny_base, tmp_path):
    """Labels unrelated to the texts: nothing to learn, so fine-tuning can only memorise the rows it sees;
    out of fold it loses to the probe, and the probe is what is written."""
    from safetensors.torch import load_file

    from pipelines.records import LabeledBatch
    from pipelines.training.recipe import train
    from serving.model import load_classifier

    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 40, size=6)) for _ in range(40)]
    labels = ["a", "b"] * 20
    batch = LabeledBatch(source="noise", texts=texts, labels=labels, ids=[str(i) for i in range(len(texts))])
    # lr high enough to memorise 30 rows in 10 steps; few steps keep the test cheap
    params = TrainParams(lora_layers=1, lr=5e-2, min_steps=10, max_steps=10)
    result = train(batch, tmp_path / "adapter", base=tiny_base, params=params, seed=0)

    sel = result.selection
    # 40 rows: folds of 30 training rows x 10 steps; the 3,000-row floor of the budget pays for all four
    assert (sel.folds, sel.folds_planned, sel.fold_steps, sel.rows_scored) == (4, 4, 10, 40)
    assert sel.kept == sel.default == "probe" and sel.estimates["probe"] > sel.estimates["lora"], sel
    assert result.params["steps"] == 0 and "final_train_loss" not in result.metrics
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and all(torch.count_nonzero(t) == 0 for t in lora_b)  # a valid adapter with no delta
    clf = load_classifier(tmp_path / "adapter", tiny_base)
    assert clf.predict(texts[:3]) and clf.labels == ["a", "b"]


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


@pytest.mark.parametrize("cached_of_rare", [0, 1])
def test_a_batch_above_the_cache_cap_with_a_rare_class_trains_and_says_what_was_held_out(
    tiny_base, tmp_path, cached_of_rare
):
    """More rows than max_steps x batch_size: only a seeded subset is cached, and a 2-row class may have
    none or one row in it. Folds then fit probes without that class (used to crash on the head's size)
    and the lone cached row is never held out (used to skip the estimate with a false reason)."""
    from pipelines.records import LabeledBatch
    from pipelines.training.cache import rows_to_cache
    from pipelines.training.recipe import train

    params = TrainParams(lora_layers=1, min_steps=4, max_steps=4, batch_size=5, noise_filter="none")
    n = 60
    cached = rows_to_cache(n, params, seed=0)
    assert cached.sum() == 20
    rare = list(np.flatnonzero(~cached)[: 2 - cached_of_rare]) + list(np.flatnonzero(cached)[:cached_of_rare])
    labels = ["a" if i % 2 else "b" for i in range(n)]
    for i in rare:
        labels[i] = "c"
    rng = np.random.default_rng(1)
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 40, size=6)) for _ in range(n)]
    batch = LabeledBatch(source="rare", texts=texts, labels=labels, ids=[str(i) for i in range(n)])
    sel = train(batch, tmp_path / "adapter", base=tiny_base, params=params, seed=0).selection
    assert sel.folds == sel.folds_planned >= 2 and sel.fold_steps == 4
    assert sel.rows_scored == 20 - cached_of_rare  # every cached row held out once, but a lone one


def test_the_same_seed_gives_the_same_selection_and_the_same_adapter(tiny_base, tmp_path):
    from pipelines.records import LabeledBatch
    from pipelines.training.recipe import train

    rng = np.random.default_rng(2)
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 40, size=6)) for _ in range(24)]
    batch = LabeledBatch(source="twice", texts=texts, labels=["a", "b", "c"] * 8, ids=[str(i) for i in range(24)])
    params = TrainParams(lora_layers=1, min_steps=5, max_steps=5, select="auto")
    first, second = (train(batch, tmp_path / name, base=tiny_base, params=params, seed=3) for name in ("one", "two"))
    assert first.selection == second.selection and first.selection.folds > 0
    assert first.adapter_sha256 == second.adapter_sha256


def test_a_kept_probe_served_from_its_folder_predicts_what_the_frozen_probe_baseline_predicts(tiny_base, tmp_path):
    from pipelines.evaluation.baselines import predict_baselines
    from pipelines.records import LabeledBatch
    from pipelines.training.recipe import train
    from serving.model import load_classifier

    rng = np.random.default_rng(4)
    labels = ["a", "b", "c"] * 10
    # each class leans on its own words, so the probe has something to separate
    texts = [" ".join(f"w{(i % 3) * 13 + j}" for j in rng.integers(0, 13, size=5)) for i in range(len(labels))]
    batch = LabeledBatch(source="probe", texts=texts, labels=labels, ids=[str(i) for i in range(len(texts))])
    params = TrainParams(select="probe", noise_filter="none")
    result = train(batch, tmp_path / "adapter", base=tiny_base, params=params, seed=0)
    assert result.selection.kept == "probe" and result.params["steps"] == 0
    unseen = [" ".join(f"w{(i % 3) * 13 + j}" for j in rng.integers(0, 13, size=5)) for i in range(30)]
    served = load_classifier(tmp_path / "adapter", tiny_base).predict(unseen)
    assert served == predict_baselines(batch, unseen, tiny_base, params.max_length)["probe"]
