"""The behaviour the training defaults rely on, on a small slice of real data (Banking77).

Small enough for CI: 6 intents x 8 examples for training; 8 intents x 16 for the noise filter.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.integration

INTENTS = [
    "card_arrival",
    "exchange_rate",
    "lost_or_stolen_card",
    "pin_blocked",
    "top_up_failed",
    "Refund_not_showing_up",
    "cash_withdrawal_charge",
    "age_limit",
]


@pytest.fixture(scope="module")
def frames(banking77):
    from bench.banking77 import read

    train, test = read("train", banking77), read("test", banking77)
    return train[train.category.isin(INTENTS)], test[test.category.isin(INTENTS)]


def test_default_training_on_eight_examples_per_class_beats_chance_by_far(frames, tmp_path):
    from pipelines.evaluation.baselines import predict_baselines
    from pipelines.metrics import quality_metrics
    from pipelines.records import LabeledBatch
    from pipelines.settings import load_settings
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train
    from serving.model import load_base, load_classifier

    train_df, test_df = frames
    train_df = train_df[train_df.category.isin(INTENTS[:6])].groupby("category").sample(8, random_state=0)
    test_df = test_df[test_df.category.isin(INTENTS[:6])]
    settings = load_settings()
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=tmp_path)
    batch = LabeledBatch(
        source="banking77-slice",
        texts=train_df.text.tolist(),
        labels=train_df.category.tolist(),
        ids=[str(i) for i in range(len(train_df))],
    )
    result = train(batch, tmp_path / "adapter", base=base, params=TrainParams(), seed=0)
    clf = load_classifier(tmp_path / "adapter", base)
    predicted = clf.predict(test_df.text.tolist())
    quality = quality_metrics(test_df.category.tolist(), predicted, clf.labels)
    sel = result.selection
    # 48 rows: the probe is the default; each fold would run the recipe's 30-step floor (36 rows: not 8
    # epochs of 2 steps), 3 of the 4 folds fit the 3,000 rows visited. The probe erred on at most 2 of
    # their 36 held-out rows, a lead fine-tuning could never turn into a win: no fold is fine-tuned.
    assert (sel.default, sel.folds, sel.folds_planned, sel.fold_steps, sel.rows_scored) == ("probe", 0, 4, 30, 0)
    assert "fine-tuning was not run on the other 36 held-out rows" in sel.reason
    # the contrastive step is off by default (and six classes are above contrastive_max_classes): the probe itself
    assert sel.kept == "probe" and result.params["steps"] == 0 and "contrastive" not in sel.reason
    assert result.dropped_examples == result.downweighted_examples == 0  # clean data: auto leaves every row be
    assert result.noise_handling.endswith("under noise_auto_fraction 10%: every row weighs 1")
    assert quality.macro_f1 > 0.75, quality.macro_f1  # chance is 1/6
    # never below the frozen probe of the same base fitted on the same rows: the kept probe is that probe, served
    probe = predict_baselines(batch, test_df.text.tolist(), base, TrainParams().max_length)["probe"]
    assert quality.macro_f1 >= quality_metrics(test_df.category.tolist(), probe, clf.labels).macro_f1 - 0.005
    assert sum(p == q for p, q in zip(predicted, probe)) >= 0.98 * len(probe)


def test_the_noise_filter_acts_mostly_on_flipped_labels_and_not_on_clean_data(frames):
    from pipelines.settings import load_settings
    from pipelines.training.objective import noise_weights
    from pipelines.training.params import TrainParams
    from serving.embeddings import embed

    train_df = frames[0].groupby("category").sample(16, random_state=1)
    labels = sorted(set(train_df.category))
    y_clean = np.array([labels.index(c) for c in train_df.category])
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y_clean), size=int(0.4 * len(y_clean)), replace=False)
    y_noisy = y_clean.copy()
    y_noisy[flipped] = (y_clean[flipped] + rng.integers(1, len(labels), size=len(flipped))) % len(labels)
    emb = embed(train_df.text.tolist(), load_settings().base_model_dir)
    is_flipped = np.zeros(len(y_clean), dtype=bool)
    is_flipped[flipped] = True

    for action in ("drop", "weight"):  # noise_filter=auto
        params = TrainParams(noise_action=action)
        assert (noise_weights(emb, y_clean, len(labels), params, seed=0).weights == 1).all(), action
        flagged = noise_weights(emb, y_noisy, len(labels), params, seed=0).weights < 1
        precision = (flagged & is_flipped).sum() / max(1, flagged.sum())
        recall = (flagged & is_flipped).sum() / is_flipped.sum()
        assert precision > 0.8 and recall > 0.6, (action, precision, recall)

    weights = noise_weights(emb, y_noisy, len(labels), TrainParams(noise_action="weight"), seed=0).weights
    assert (weights > 0).all()  # nothing dropped: a flagged but right label still teaches, a little
    assert np.median(weights[is_flipped]) < 0.5 * np.median(weights[~is_flipped])

    # margin: clean data untouched; on noisy data every row weighted, the flipped ones far lower
    margin = TrainParams(noise_action="margin")
    assert (noise_weights(emb, y_clean, len(labels), margin, seed=0).weights == 1).all()
    noise = noise_weights(emb, y_noisy, len(labels), margin, seed=0)
    nearer_other = noise.weights < 0.5
    assert (nearer_other & is_flipped).sum() > 0.8 * nearer_other.sum(), noise.note
    assert (nearer_other & is_flipped).sum() > 0.6 * is_flipped.sum(), noise.note
    assert np.median(noise.weights[is_flipped]) < 0.3 * np.median(noise.weights[~is_flipped])


def test_a_noisy_batch_trains_on_margin_weights_and_the_result_says_so(frames, tmp_path):
    from bench.banking77 import flip
    from pipelines.evaluation.baselines import predict_baselines
    from pipelines.metrics import quality_metrics
    from pipelines.records import LabeledBatch
    from pipelines.settings import load_settings
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train
    from serving.model import load_base, load_classifier

    train_df, test_df = frames
    train_df = train_df.groupby("category").sample(16, random_state=2)
    noisy, flipped = flip(train_df.category.tolist(), 0.4, seed=0)
    settings = load_settings()
    base = load_base(settings.base_model_dir, model_id=settings.base_model_id, cache_dir=tmp_path)
    batch = LabeledBatch(
        source="banking77-noisy-slice",
        texts=train_df.text.tolist(),
        labels=noisy,
        ids=[str(i) for i in range(len(noisy))],
    )
    # select: probe keeps it cheap (no LoRA steps): what is under test is the head the weights fit
    params = TrainParams(noise_action="margin", select="probe")
    result = train(batch, tmp_path / "adapter", base=base, params=params, seed=0)

    assert "every row weighted by its margin to its class mates" in result.noise_handling
    assert abs(result.downweighted_examples - len(flipped)) <= 0.15 * len(noisy), result.noise_handling
    assert result.train_examples == len(noisy) and result.dropped_examples == 0
    clf = load_classifier(tmp_path / "adapter", base)
    truth = test_df.category.tolist()
    weighted = quality_metrics(truth, clf.predict(test_df.text.tolist()), clf.labels).macro_f1
    plain = predict_baselines(batch, test_df.text.tolist(), base, TrainParams().max_length)["probe"]
    assert weighted > quality_metrics(truth, plain, clf.labels).macro_f1 + 0.03
