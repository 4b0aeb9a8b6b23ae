"""Whole training runs on a tiny random-weight encoder keep the fine-tuned adapter or the frozen probe, whichever
scores higher out of fold: seconds of training each, so not unit tests (the fold plan and the choice themselves:
tests/unit/pipelines/training/test_train_select.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipelines.training.params import TrainParams


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


@pytest.fixture
def every_fold(monkeypatch):
    """Fine-tune every planned fold, as training did before it stopped once the outcome was settled."""
    monkeypatch.setattr("pipelines.training.select_runs.settled", lambda *_: False)


def _noise_batch():
    """Labels unrelated to the texts: nothing to learn, so fine-tuning can only memorise the rows it sees."""
    from pipelines.records import LabeledBatch

    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{i}" for i in rng.integers(0, 40, size=6)) for _ in range(40)]
    labels = ["a", "b"] * 20
    return LabeledBatch(source="noise", texts=texts, labels=labels, ids=[str(i) for i in range(len(texts))])


# lr high enough to memorise 30 rows in 10 steps; few steps keep the test cheap. The counts below are of the
# noise filter's weight action (flagged rows at p^0.25) and of select_z 1.0, which these tests of when the
# folds stop were written against (the default's threshold: tests/unit/pipelines/training/test_train_select.py).
# contrastive pinned off, whatever the default: a kept probe is then the probe itself, the zero-delta adapter these
# tests look for.
NOISE_PARAMS = TrainParams(
    lora_layers=1, lr=5e-2, min_steps=10, max_steps=10, noise_action="weight", select_z=1.0, contrastive=False
)


def _five_steps(**update) -> TrainParams:
    """One adapted block and five steps, the cheapest run that still trains, with ``update`` on top."""
    return TrainParams(lora_layers=1, min_steps=5, max_steps=5, **update)


def test_a_batch_whose_labels_are_noise_keeps_the_probe_as_a_zero_delta_adapter(tiny_base, tmp_path):
    """Out of fold fine-tuning loses to the probe, and the probe is what is written; once no fold left
    could change that, the remaining folds are not fine-tuned."""
    from safetensors.torch import load_file

    from pipelines.training.recipe import train
    from serving.model import load_classifier

    batch = _noise_batch()
    result = train(batch, tmp_path / "adapter", base=tiny_base, params=NOISE_PARAMS, seed=0)

    sel = result.selection
    # 40 rows: folds of 30 training rows x 10 steps; the 3,000-row floor of the budget pays for all four,
    # but the probe's errors in the last one were too few for fine-tuning to win
    assert (sel.folds, sel.folds_planned, sel.fold_steps, sel.rows_scored) == (3, 4, 10, 30)
    assert "fine-tuning was not run on the other 10 held-out rows" in sel.reason
    assert sel.kept == sel.default == "probe" and sel.estimates["probe"] > sel.estimates["lora"], sel
    assert sel.continued_steps == 0 and result.params["steps"] == 0 and "final_train_loss" not in result.metrics
    weights = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    lora_b = [t for name, t in weights.items() if "lora_B" in name]
    assert lora_b and all(torch.count_nonzero(t) == 0 for t in lora_b)  # a valid adapter with no delta
    clf = load_classifier(tmp_path / "adapter", tiny_base)
    assert clf.predict(batch.texts[:3]) and clf.labels == ["a", "b"]


def test_stopping_once_settled_writes_the_adapter_that_fine_tuning_every_fold_writes(tiny_base, tmp_path, monkeypatch):
    from pipelines.training.recipe import train

    stopped = train(_noise_batch(), tmp_path / "stopped", base=tiny_base, params=NOISE_PARAMS, seed=0)
    monkeypatch.setattr("pipelines.training.select_runs.settled", lambda *_: False)
    every = train(_noise_batch(), tmp_path / "every", base=tiny_base, params=NOISE_PARAMS, seed=0)
    assert (stopped.selection.folds, every.selection.folds, every.selection.rows_scored) == (3, 4, 40)
    assert stopped.selection.kept == every.selection.kept and "not run" not in every.selection.reason
    # each fold trains from its own seed: the folds both ran gave the same predictions
    assert stopped.selection.lora_only_right <= every.selection.lora_only_right
    assert stopped.adapter_sha256 == every.adapter_sha256


@pytest.mark.parametrize("cached_of_rare", [0, 1])
def test_a_batch_above_the_cache_cap_with_a_rare_class_trains_and_says_what_was_held_out(
    tiny_base, tmp_path, cached_of_rare, every_fold
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
    # the contrastive step on, three classes allowed it and no label-noise filter to hold it back (these random
    # texts would look noisy to it), so the kept probe takes it too
    params = _five_steps(select="auto", noise_filter="none", contrastive=True, contrastive_max_classes=3)
    first, second = (train(batch, tmp_path / name, base=tiny_base, params=params, seed=3) for name in ("one", "two"))
    assert first.selection == second.selection and first.selection.folds > 0
    assert first.selection.kept == "contrastive", first.selection.reason  # the step's draws are seeded too
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


def test_a_probe_the_batch_keeps_gets_the_contrastive_step_on_every_block_and_serves_its_refitted_head(
    tiny_base, tmp_path
):
    from safetensors.torch import load_file

    from pipelines.training.contrastive import contrastive_steps_for, pair_loss
    from pipelines.training.objective import logreg_head
    from pipelines.training.recipe import train
    from registry.adapter_folder import WEIGHTS_FILE
    from serving.model import MeanPoolClassifier, load_classifier

    batch = _separable(30, seed=6)
    # three classes: the step's default limit is two (tests/unit/pipelines/training/test_contrastive_step.py)
    params = _five_steps(noise_filter="none", contrastive=True, contrastive_max_classes=3, contrastive_pairs_per_row=50)
    result = train(batch, tmp_path / "adapter", base=tiny_base, params=params, seed=0)
    sel = result.selection
    assert (sel.default, sel.kept) == ("probe", "contrastive"), sel
    assert sel.reason.endswith("the probe refitted on them (contrastive: true)")
    # every block of the 2 adapted, though the classifier's recipe adapts 1; 50 pairs a row would take 7 steps of
    # 16 rows, capped at this test's max_steps
    assert (result.params["lora_layers"], result.params["contrastive_layers"]) == (1, 2)
    assert result.params["steps"] == contrastive_steps_for(30, params) == params.max_steps == 5
    assert result.metrics["final_contrastive_loss"] >= 0 and "final_train_loss" not in result.metrics
    weights = load_file(tmp_path / "adapter" / WEIGHTS_FILE)
    for block in (0, 1):
        delta = [t for name, t in weights.items() if f"layer.{block}." in name and "lora_B" in name]
        assert delta and any(torch.count_nonzero(t) for t in delta), block
    clf = load_classifier(tmp_path / "adapter", tiny_base)
    tokens = tiny_base.tokenize(batch.texts, params.max_length)
    with torch.no_grad():
        tuned = clf.module.base_model.model.embed(**tokens)
        frozen = MeanPoolClassifier(tiny_base.shared_copy(), 3).embed(**tokens)
    y = torch.tensor(["abc".index(label) for label in batch.labels])
    # the step did what it is for: same-label rows closer, different ones further apart, over all 30 rows
    rows = torch.arange(30)
    assert pair_loss(tuned, y, torch.ones(30), rows) < pair_loss(frozen, y, torch.ones(30), rows)
    # and the head served is the probe refitted on the tuned features, not the frozen probe it started as
    refitted, frozen_probe = torch.nn.Linear(16, 3), torch.nn.Linear(16, 3)
    logreg_head(refitted, tuned.numpy(), y.numpy(), params.head_C, seed=0)
    logreg_head(frozen_probe, frozen.numpy(), y.numpy(), params.head_C, seed=0)
    served = clf.module.base_model.model.classifier
    with torch.no_grad():
        assert torch.allclose(served(tuned), refitted(tuned), atol=1e-3)
        assert not torch.allclose(served(tuned), frozen_probe(tuned), atol=1e-2)


def test_a_two_class_batch_the_noise_filter_acted_on_keeps_the_probe_itself(tiny_base, tmp_path):
    from pipelines.training.recipe import train

    # cleanlab: the filter always acts; margin then weights every row, so the batch counts as found noisy
    params = _five_steps(noise_filter="cleanlab", noise_action="margin", contrastive=True)
    result = train(_noise_batch(), tmp_path / "adapter", base=tiny_base, params=params, seed=0)
    assert result.downweighted_examples > 0 and result.selection.kept == "probe", result.selection
    assert result.selection.reason.endswith("no contrastive step: the label-noise filter acted on this batch")
    assert result.params["steps"] == 0


def test_a_batch_the_noise_filter_acted_on_keeps_the_probe_even_when_drop_gave_every_row_back(tiny_base, tmp_path):
    from pipelines.training.recipe import train

    # drop never prunes a class below min_per_class: at 20, each class's flagged rows all come back at weight 1,
    # so the weights alone would call the batch clean and give it the step. confident_learning: cleanlab's
    # default (both) would itself flag no row of a class at min_per_class, and then nothing comes back
    params = _five_steps(
        noise_filter="cleanlab",
        noise_filter_by="confident_learning",
        noise_action="drop",
        min_per_class=20,
        contrastive=True,
    )
    result = train(_noise_batch(), tmp_path / "adapter", base=tiny_base, params=params, seed=0)
    assert "flagged 0 of" not in result.noise_handling, result.noise_handling
    assert result.dropped_examples == 0 and result.noise_handling.endswith(": 0 dropped"), result.noise_handling
    assert result.selection.kept == "probe", result.selection
    assert result.selection.reason.endswith("no contrastive step: the label-noise filter acted on this batch")


def test_a_clean_two_class_batch_keeps_the_probe_itself_by_default_and_gets_the_step_when_it_is_on(tiny_base, tmp_path):
    from pipelines.training.recipe import train

    batch = _separable(24, seed=3, classes="ab")
    params = _five_steps()
    assert params.noise_filter == "auto" and params.contrastive_max_classes == 2 and not params.contrastive
    result = train(batch, tmp_path / "default", base=tiny_base, params=params)
    assert (result.selection.default, result.selection.kept) == ("probe", "probe"), result.selection
    assert result.params["steps"] == 0 and "contrastive" not in result.selection.reason
    # the gate the default runs (auto) acts only on a batch it finds noisy; this one has no wrong label, so the
    # step's rule (no step where the label-noise filter acted) must not hold it back: a rule on the filter
    # setting alone would
    on = train(batch, tmp_path / "on", base=tiny_base, params=params.model_copy(update={"contrastive": True}))
    assert on.noise_handling.endswith("every row weighs 1"), on.noise_handling
    assert (on.selection.default, on.selection.kept) == ("probe", "contrastive"), on.selection
    assert on.params["steps"] > 0 and "final_contrastive_loss" in on.metrics


def test_the_contrastive_step_refuses_more_blocks_than_the_base_model_has(tiny_base, tmp_path):
    from pipelines.training.recipe import train
    from registry.errors import RefusedError

    params = _five_steps(contrastive=True, contrastive_layers=3, contrastive_max_classes=3)
    message = "contrastive_layers=3 but the base model has 2 blocks; set it to at most 2, or null for every block"
    with pytest.raises(RefusedError, match=message):
        train(_separable(30, seed=6), tmp_path / "adapter", base=tiny_base, params=params, seed=0)
    assert not (tmp_path / "adapter").exists()
    # nothing to refuse where the step cannot run: switched off, or more classes than it takes
    for update in ({"contrastive": False}, {"contrastive_max_classes": 2}):
        result = train(
            _separable(30, seed=6), tmp_path / str(update), base=tiny_base, params=params.model_copy(update=update)
        )
        assert result.selection.kept != "contrastive", update


def _separable(n: int, seed: int, classes: str = "abc"):
    """``n`` rows of ``classes``, each class drawing its words from a vocabulary of its own: separable."""
    from pipelines.records import LabeledBatch

    rng = np.random.default_rng(seed)
    labels = list(classes) * (n // len(classes))
    texts = [" ".join(f"w{classes.index(label) * 13 + j}" for j in rng.integers(0, 13, size=5)) for label in labels]
    return LabeledBatch(source=classes, texts=texts, labels=labels, ids=[str(i) for i in range(len(texts))])


# Fine-tuning the default (as on a large batch) and a budget that pays for exactly one fold: 18 fold rows
# x 5 steps of 8 = 40 rows visited, select_cost 1 x 5 final steps x 8. At select_z 1.0 the 6 rows a fold holds
# out of 24 can still move the outcome after one fold, so a budget of two runs both.
ONE_FOLD = _five_steps(
    batch_size=8,
    select_large_rows=2,
    select_cost=1.0,
    select_min_visits=0,
    select_z=1.0,
)


@pytest.fixture
def lora_wraps(monkeypatch):
    """Count the LoRA adapters wrapped around a probe: one per fold, and one for a final run from the probe."""
    from pipelines.training import objective

    calls = []

    def counted(*args):
        calls.append(args)
        return objective.wrap_lora(*args)

    for module in ("recipe", "select_runs"):  # the final run's wrap, and the folds'
        monkeypatch.setattr(f"pipelines.training.{module}.wrap_lora", counted)
    return calls


def test_a_kept_lora_with_one_fold_continues_that_fold_on_every_row_and_says_so(
    tiny_base, tmp_path, lora_wraps, monkeypatch
):
    from safetensors.torch import load_file

    from pipelines.training import objective
    from pipelines.training.recipe import train
    from registry.adapter_folder import WEIGHTS_FILE

    heads = []

    def logreg_head(head, embeddings, *args, **kwargs):
        heads.append((head, embeddings))
        return objective.logreg_head(head, embeddings, *args, **kwargs)

    for module in ("recipe", "select_runs"):  # the folds' probes, and the final run's refit
        monkeypatch.setattr(f"pipelines.training.{module}.logreg_head", logreg_head)
    batch = _separable(24, seed=5)
    first = train(batch, tmp_path / "one", base=tiny_base, params=ONE_FOLD, seed=7)
    # the last probe fitted is the kept head, on every row's embedding through the fold's adapter
    refitted, embeddings = heads[-1]
    assert len(heads) == 2 and len(embeddings) == 24 and refitted.out_features == 3  # the fold's probe, then this
    sel = first.selection
    assert (sel.default, sel.kept, sel.folds, sel.folds_planned, sel.fold_steps) == ("lora", "lora", 1, 4, 5), sel
    # 5 steps left nothing to the recipe's budget: one pass over the 24 rows at 8 a step
    assert sel.continued_steps == first.params["steps"] == 3 and first.metrics["final_train_loss"] >= 0
    assert "continues that fold's fine-tuned weights (5 steps on 18 rows)" in sel.reason
    assert "for 3 more steps over all of them" in sel.reason
    assert len(lora_wraps) == 1  # the fold's: the final run did not start again from the probe
    # the head saved is the one refitted (then trained on in place), not the fold's nor a frozen copy
    saved = [v for k, v in load_file(tmp_path / "one" / WEIGHTS_FILE).items() if k.endswith("classifier.weight")]
    assert len(saved) == 1 and torch.equal(saved[0], refitted.weight.detach().cpu())
    second = train(batch, tmp_path / "two", base=tiny_base, params=ONE_FOLD, seed=7)
    assert second.selection == sel and second.adapter_sha256 == first.adapter_sha256


@pytest.mark.parametrize(
    "case, params, n, folds",
    [
        ("two folds ran", ONE_FOLD.model_copy(update={"select_cost": 2.0}), 24, 2),
        # 60 rows, of which max_steps x batch_size = 40 are cached: the others feed only a fresh head's probe
        ("kept rows past the cache", ONE_FOLD, 60, 1),
        ("fine-tuning not chosen but set", ONE_FOLD.model_copy(update={"select": "lora"}), 24, 0),
    ],
)
def test_the_final_run_starts_from_the_probe_unless_exactly_one_fold_ran_on_every_kept_row(
    tiny_base, tmp_path, lora_wraps, case, params, n, folds
):
    from pipelines.training.recipe import train

    result = train(_separable(n, seed=5), tmp_path / "adapter", base=tiny_base, params=params, seed=7)
    sel = result.selection
    assert sel.kept == "lora" and sel.folds == folds and sel.continued_steps == 0, case
    assert "continues" not in sel.reason and result.params["steps"] == 5 and len(lora_wraps) == folds + 1, case


def test_a_kept_lora_where_the_probe_is_the_default_starts_from_the_probe_even_after_one_fold(
    tiny_base, tmp_path, lora_wraps, monkeypatch
):
    """Continuing was measured only where fine-tuning is the default (a large batch): on a tiny batch the fold
    and the final run have the same budget, so a kept LoRA trains from the probe as before."""
    from pipelines.records import Selection
    from pipelines.training.recipe import train

    # every fold the budget allows runs (one), and fine-tuning is kept whatever it scored
    monkeypatch.setattr("pipelines.training.select_runs.settled", lambda *args: False)
    monkeypatch.setattr(
        "pipelines.training.select_runs.choose",
        lambda y, predictions, z, default: Selection(kept="lora", default=default, reason="kept", estimates={}),
    )
    params = ONE_FOLD.model_copy(update={"select_large_rows": 10_000})
    result = train(_separable(24, seed=5), tmp_path / "adapter", base=tiny_base, params=params, seed=7)
    sel = result.selection
    assert (sel.default, sel.kept, sel.folds, sel.continued_steps) == ("probe", "lora", 1, 0), sel
    assert "continues" not in sel.reason and result.params["steps"] == 5 and len(lora_wraps) == 2


def test_embeddings_of_cached_rows_come_back_in_the_order_asked_whatever_their_lengths(tiny_base):
    from peft import get_peft_model

    from pipelines.training.cache import encode_frozen
    from pipelines.training.objective import embed_cached
    from pipelines.training.recipe import lora_config
    from serving.encoder_family import family_of
    from serving.model import MeanPoolClassifier

    texts = [" ".join(f"w{j}" for j in range(1 + i % 7)) for i in range(70)]  # lengths 1-7, mixed
    model = MeanPoolClassifier(tiny_base.shared_copy(), 2)
    data = encode_frozen(model, tiny_base, texts, 1, 16, np.ones(len(texts), dtype=bool))
    config = lora_config(ONE_FOLD, ["query"], range(1, 2), family_of(model.encoder).layers_pattern)
    peft_model = get_peft_model(model, config)
    rows = np.random.default_rng(0).permutation(len(texts))
    together = embed_cached(peft_model, data, rows, 1)
    one_by_one = np.concatenate([embed_cached(peft_model, data, rows[i : i + 1], 1) for i in range(len(rows))])
    np.testing.assert_allclose(together, one_by_one, atol=1e-6)
    np.testing.assert_allclose(together, data.embeddings[rows], atol=1e-6)  # no LoRA delta yet: the frozen ones
    # without pool the same states are cached, and no frozen embedding is made (the contrastive step's encoding)
    states_only = encode_frozen(model, tiny_base, texts, 1, 16, np.ones(len(texts), dtype=bool), pool=False)
    assert states_only.embeddings is None
    assert all(torch.equal(a, b) for a, b in zip(states_only.hidden, data.hidden, strict=True))
