"""Attributions of tiny random-weight adapters (built here): they add up, they sit on words or
Japanese tokens, and the fallback and refusals say what they are."""

from __future__ import annotations

import numpy as np
import pytest

import serving.explain
from registry.errors import RefusedError
from serving.explain import Tokens, explain, explain_many, merge, units_of
from tests.tiny_encoders import tiny_adapter

JA = "カードを駅で落としてしまいました。利用を止めてください card please"
# Of different lengths, so that explaining them together pads the shorter ones.
TEXTS = [JA, "荷物が届かない", "card please", "my card was stolen at the station yesterday evening"]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> dict:
    """A tiny adapter of each tokenizer kind: WordPiece (CJK split into characters), SentencePiece, MeCab words."""
    root = tmp_path_factory.mktemp("explain")
    return {kind: tiny_adapter(kind, root) for kind in ("bert", "modernbert", "bert-ja-mecab")}


class NoGradients:
    """What the ONNX backend offers: probabilities, labels, the base's tokenizer, and no module to differentiate."""

    def __init__(self, classifier) -> None:
        self.labels, self.meta, self.base = classifier.labels, classifier.meta, classifier.base
        self.predict_proba = classifier.predict_proba


@pytest.mark.parametrize("kind", ["bert", "modernbert", "bert-ja-mecab"])
def test_attributions_sum_to_the_probability_minus_the_baselines_within_the_reported_error(adapters, kind):
    e = explain(adapters[kind], JA, steps=8)
    assert e.method == "integrated_gradients" and e.steps == 8
    assert e.label in adapters[kind].labels
    assert e.probability == pytest.approx(float(adapters[kind].predict_proba([JA]).max()), abs=1e-6)
    total = sum(s.attribution for s in e.spans)
    assert abs(total - (e.probability - e.baseline_probability)) <= abs(e.delta) + 1e-5
    assert any(abs(s.attribution) > 1e-4 for s in e.spans)  # not trivially zero


@pytest.mark.parametrize("kind", ["bert", "modernbert", "bert-ja-mecab"])
def test_spans_are_the_texts_words_and_japanese_tokens_in_order(adapters, kind):
    e = explain(adapters[kind], JA, steps=4)
    assert [s.text for s in e.spans][-2:] == ["card", "please"]
    assert all(JA[s.start : s.end] == s.text for s in e.spans)
    assert "".join(s.text for s in e.spans) == JA.replace(" ", "")
    japanese = [s.text for s in e.spans[:-2]]
    if kind == "bert":  # CJK characters split off one by one, as multilingual BERT does
        assert japanese[:4] == ["カ", "ー", "ド", "を"]
    if kind == "bert-ja-mecab":  # MeCab words, placed without offsets (a slow tokenizer)
        assert japanese[:2] == ["カード", "を"]


def test_without_gradients_occlusion_explains_and_says_why(adapters):
    e = explain(NoGradients(adapters["bert"]), JA)
    assert e.method == "occlusion" and "no gradients" in e.method_note
    assert e.delta is None and e.steps is None
    first = e.spans[0]
    without = JA[: first.start] + JA[first.end :]
    drop = e.probability - float(adapters["bert"].predict_proba([without])[0][adapters["bert"].labels.index(e.label)])
    assert first.attribution == pytest.approx(drop, abs=1e-5)
    with pytest.raises(RefusedError, match="integrated gradients cannot run: NoGradients computes no gradients"):
        explain(NoGradients(adapters["bert"]), JA, method="integrated_gradients")


def test_faithfulness_is_measured_by_removing_the_top_spans(adapters):
    classifier = adapters["modernbert"]
    e = explain(classifier, JA, steps=4)
    f = e.faithfulness
    assert f.top_k == -(-len(e.spans) // 5)  # a fifth of the spans, rounded up
    top = sorted(e.spans, key=lambda s: -s.attribution)[:3]
    removed = "".join(ch for i, ch in enumerate(JA) if not any(s.start <= i < s.end for s in top))
    p = classifier.predict_proba([removed])[0][classifier.labels.index(e.label)]
    assert f.comprehensiveness == pytest.approx(e.probability - float(p), abs=1e-5)


def test_a_text_longer_than_the_model_reads_is_flagged_and_its_tail_gets_nothing(adapters):
    long_text = " ".join(["荷物"] * 80) + " 最後"
    e = explain(adapters["bert"], long_text, steps=2)
    assert e.truncated
    assert e.spans[-1].text == "最後" and e.spans[-1].attribution == 0.0


@pytest.mark.parametrize(
    "text, steps, message",
    [
        ("", 8, "empty or only whitespace"),
        (" \n\t", 8, "empty or only whitespace"),
        ("荷物", 1, "at least 2"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(adapters, text, steps, message):
    with pytest.raises(RefusedError, match=message):
        explain(adapters["bert"], text, steps=steps)


def test_english_words_are_spans_and_tokens_merge_into_them_keeping_the_sum():
    text = "my  card's gone"
    units = units_of(text, [0, 4, 8, 9, 11])
    assert [text[b:e] for b, e in units] == ["my", "card's", "gone"]
    # [CLS] my card ' s <unplaced> gone [SEP]
    tokens = Tokens(
        input_ids=[0] * 8,
        starts=[None, 0, 4, 8, 9, None, 11, None],
        special=[True, False, False, False, False, False, False, True],
        truncated=False,
    )
    per_token = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0])
    merged = merge(units, tokens, per_token)
    assert merged == pytest.approx([0.1, 0.9, 1.1])  # the unplaced token joins the next span
    assert merged.sum() == pytest.approx(per_token.sum())


def test_explaining_leaves_predictions_of_the_same_adapter_unchanged(adapters):
    classifier = adapters["bert"]
    before = classifier.predict_proba([JA, "荷物が届かない"])
    explain(classifier, JA, steps=4)
    assert np.array_equal(classifier.predict_proba([JA, "荷物が届かない"]), before)
    assert not any(p.requires_grad for p in classifier.module.parameters())


def _same(together, alone) -> None:
    assert [e.label for e in together] == [e.label for e in alone]
    for t, a in zip(together, alone):
        assert [(s.start, s.end) for s in t.spans] == [(s.start, s.end) for s in a.spans]
        assert [s.attribution for s in t.spans] == pytest.approx([s.attribution for s in a.spans], abs=1e-5)
        assert t.probability == pytest.approx(a.probability, abs=1e-5)
        if a.delta is not None:
            assert (t.delta, t.baseline_probability) == pytest.approx((a.delta, a.baseline_probability), abs=1e-5)
        assert t.faithfulness.top_k == a.faithfulness.top_k
        assert t.faithfulness.model_dump() == pytest.approx(a.faithfulness.model_dump(), abs=1e-5)


@pytest.mark.parametrize("kind", ["bert", "modernbert", "bert-ja-mecab"])
def test_texts_explained_together_get_the_explanations_each_gets_alone(adapters, kind):
    _same(explain_many(adapters[kind], TEXTS, steps=4), [explain(adapters[kind], t, steps=4) for t in TEXTS])


def test_a_small_pass_budget_splits_texts_and_steps_without_changing_the_explanations(adapters, monkeypatch):
    classifier = adapters["bert"]
    alone = [explain(classifier, t, steps=4) for t in TEXTS]
    passes = []
    integrate = serving.explain._integrate

    def counted(classifier, texts, *args):
        passes.append(len(texts))
        return integrate(classifier, texts, *args)

    monkeypatch.setattr(serving.explain, "_integrate", counted)
    monkeypatch.setattr(serving.explain, "GRADIENT_TOKENS", 40)  # JA alone at 4 steps takes more: a step at a time
    _same(explain_many(classifier, TEXTS, steps=4), alone)
    assert len(passes) > 1 and sum(passes) == len(TEXTS)


def test_rows_are_grouped_by_length_within_the_budget():
    # 4 x 30 tokens x 32 steps = 3840 positions fit GRADIENT_TOKENS (4096); the 100-token row goes alone.
    assert serving.explain._passes([30, 10, 12, 11, 100], steps=32) == [[1, 3, 2, 0], [4]]
    assert serving.explain._passes([200], steps=32) == [[0]]  # too long for one pass: still explained


def test_occlusion_of_texts_together_is_the_occlusion_of_each_alone(adapters):
    classifier = NoGradients(adapters["bert"])
    _same(explain_many(classifier, TEXTS), [explain(classifier, t) for t in TEXTS])


def test_a_blank_text_among_several_is_refused_by_its_place_and_no_text_gets_no_explanation(adapters):
    with pytest.raises(RefusedError, match=r"empty or only whitespace \(text 2 of 3\)"):
        explain_many(adapters["bert"], ["荷物", "  ", "card"], steps=2)
    assert explain_many(adapters["bert"], [], steps=2) == []
