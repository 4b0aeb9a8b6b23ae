"""Training keeps the fine-tuned adapter or the frozen probe, whichever scores higher out of fold on the
batch: the fold plan, the choice, and a whole run on a tiny random-weight encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.train_params import TrainParams
from pipelines.train_select import choose, plan_folds


def test_folds_are_stratified_disjoint_and_cover_every_row_when_the_budget_allows():
    y = np.repeat([0, 1, 2], [8, 8, 5])
    plan = plan_folds(y, TrainParams(select_folds=4), final_steps=30, seed=0)
    assert plan.planned == len(plan.folds) == 4
    held = np.concatenate([h for _, h in plan.folds])
    assert sorted(held.tolist()) == list(range(len(y)))  # every row held out exactly once
    for train, h in plan.folds:
        assert not set(train) & set(h) and len(train) + len(h) == len(y)
        assert set(y[h]) == {0, 1, 2}  # each class in each held-out part


def test_a_class_smaller_than_the_folds_lowers_their_number_and_a_single_row_class_has_none():
    assert plan_folds(np.repeat([0, 1], [10, 3]), TrainParams(select_folds=4), 30, seed=0).planned == 3
    assert plan_folds(np.array([0, 0, 0, 1]), TrainParams(), 30, seed=0) is None


def test_a_large_batch_runs_the_folds_its_budget_pays_for_with_fewer_steps_when_not_even_one_fits():
    y = np.repeat(np.arange(77), 16)  # 1,232 rows: the final run visits 154 steps x 32 rows
    params = TrainParams(select_cost=0.3, select_min_visits=1000)
    plan = plan_folds(y, params, final_steps=params.steps_for(len(y)), seed=0)
    assert len(plan.folds) == 1 and plan.planned == 4
    assert plan.steps * params.batch_size <= 0.3 * 154 * 32 < params.steps_for(924) * params.batch_size
    generous = plan_folds(y, TrainParams(select_cost=10.0), final_steps=154, seed=0)
    assert len(generous.folds) == 4 and generous.steps == TrainParams().steps_for(924)


def test_a_tiny_batch_gets_every_fold_at_the_full_recipe():
    y = np.repeat([0, 1], 16)
    params = TrainParams()
    plan = plan_folds(y, params, final_steps=params.steps_for(32), seed=0)
    assert len(plan.folds) == 4 and plan.steps == params.steps_for(24)


def test_fine_tuning_is_kept_only_when_its_lead_clears_the_paired_noise():
    y = np.repeat([0, 1], 50)
    probe = y.copy()
    probe[:10] = 1  # probe wrong on 10 rows
    lora = y.copy()
    lora[:2] = 1  # fine-tuned wrong on 2 of those: 8 discordant rows, all for fine-tuning
    kept, estimates, reason = choose(y, {"probe": probe, "lora": lora}, z=1.0)
    assert kept == "lora" and estimates["lora"] > estimates["probe"]
    assert estimates["lead_needed"] == pytest.approx((np.sqrt(8) + 1) / 100, abs=1e-4)
    assert choose(y, {"probe": probe, "lora": lora}, z=3.0)[0] == "probe"  # 0.08 lead < (3 x 2.83 + 1) / 100

    two_rows = probe.copy()
    two_rows[8:10] = 0  # right on two rows where the probe is wrong, and on no other: a 2-to-0 split is noise
    kept, _, reason = choose(y, {"probe": probe, "lora": two_rows}, z=1.0)
    assert kept == "probe" and "probe training started from is kept" in reason
    assert choose(y, {"probe": probe, "lora": probe}, z=0.0)[0] == "probe"  # a tie keeps where training started


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    """A 2-block BERT with random weights and a word-level vocabulary: seconds to train."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from pipelines.model import LoadedBase
    from registry.fingerprint import BaseModelFingerprint

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + [f"w{i}" for i in range(40)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=32), add_pooling_layer=False)  # fmt: skip
    encoder.requires_grad_(False).eval()
    fp = BaseModelFingerprint(model_id="tiny", weights_sha256="0" * 64, tokenizer_sha256="1" * 64)
    return LoadedBase(model_dir=tmp_path_factory.mktemp("tiny"), device="cpu", tokenizer=tokenizer, encoder=encoder,
                      fingerprint=fp)  # fmt: skip


def test_a_batch_whose_labels_are_noise_keeps_the_probe_as_a_zero_delta_adapter(tiny_base, tmp_path):
    """Labels unrelated to the texts: nothing to learn, so fine-tuning can only memorise the rows it sees;
    out of fold it loses to the probe, and the probe is what is written."""
    from safetensors.torch import load_file

    from pipelines.model import load_classifier
    from pipelines.records import LabeledBatch
    from pipelines.train import train

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
    assert sel.kept == "probe" and sel.estimates["probe"] > sel.estimates["lora"], sel
    assert result.params["steps"] == 0 and "final_train_loss" not in result.metrics
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and all(torch.count_nonzero(t) == 0 for t in lora_b)  # a valid adapter with no delta
    clf = load_classifier(tmp_path / "adapter", tiny_base)
    assert clf.predict(texts[:3]) and clf.labels == ["a", "b"]
