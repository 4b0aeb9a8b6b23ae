"""Every encoder family trains (from cached lower blocks), loads and predicts: tiny random-weight models
with a tokenizer trained on Japanese text, built here (nothing is downloaded)."""

from __future__ import annotations

import json

import pytest
import torch

from pipelines.batches.read import read_batch
from pipelines.policy import DataPolicy
from pipelines.training.params import TrainParams
from pipelines.training.recipe import train
from registry.errors import RefusedError
from serving.encoder_family import FAMILIES, family_of, upper_blocks
from serving.model import MeanPoolClassifier, load_base, load_classifier
from tests.conftest import ANY_MACHINE_LOAD
from tests.tiny_encoders import DATA, KINDS, build

BATCH_LIMIT = DataPolicy().max_file_bytes  # the shipped policy's data.max_file_mb

pytestmark = [pytest.mark.integration]

# The last is longer than ModernBERT's local attention window (16 tokens): its sliding-window mask matters.
TEXTS = [
    "ガス代の請求が二重になっています",
    "ﾊﾟｽﾜｰﾄﾞを忘れました",
    "荷物が届かない",
    "先月注文した荷物がまだ届かず、追跡番号で調べても配送状況が一週間前から更新されていません。返金をお願いします",
]


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("encoders")
    return {kind: load_base(build(kind, root / kind), model_id=kind, cache_dir=root / "cache") for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_run_from_cached_lower_states_give_the_full_forward_pass(bases, kind):
    base = bases[kind]
    model = MeanPoolClassifier(base.shared_copy(), 2)
    enc = base.tokenize(TEXTS, 64)
    assert enc["attention_mask"].sum(dim=1).max() > 16  # past ModernBERT's local window
    with torch.inference_mode():
        full = model.embed(enc["input_ids"], enc["attention_mask"])
        for start in range(len(model.layers())):
            hidden = model.hidden_before(enc["input_ids"], enc["attention_mask"], start)
            assert torch.allclose(model.embed_from(hidden, enc["attention_mask"], start), full, atol=1e-5), start


@pytest.mark.parametrize("kind", KINDS)
def test_each_family_trains_lora_on_its_own_layer_names_and_the_adapter_loads(bases, kind, tmp_path):
    base = bases[kind]
    family = family_of(base.encoder)
    result = train(
        read_batch(DATA / "sample_ja" / "train.csv", max_bytes=BATCH_LIMIT),
        tmp_path / "adapter",
        base=base,
        params=TrainParams(min_steps=4, max_steps=4, noise_filter="none", max_length=48, select="lora"),
    )
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text(encoding="utf-8"))
    assert sorted(config["target_modules"]) == sorted(result.params["lora_targets"])
    assert set(result.params["lora_targets"]) <= set(family.lora_targets)
    # Every linear layer the block has: DeBERTa-v2's own position projections too, v3's shared ones not.
    assert ({"pos_key_proj", "pos_query_proj"} <= set(config["target_modules"])) == (kind == "deberta-v2-conv")
    assert config["layers_pattern"] == family.layers_pattern
    assert config["layers_to_transform"] == [3]  # the upper third of 4 blocks
    assert result.base_model_id == kind
    assert result.params["lora_layers"] == 1
    classifier = load_classifier(tmp_path / "adapter", base)
    assert set(classifier.predict(TEXTS)) <= {"card_lost", "refund_request", "login_problem", "delivery_delay"}
    # The LoRA weights moved: the adapter is not the frozen base plus the probe head.
    lora = [p for n, p in classifier._model.named_parameters() if "lora_B" in n]
    assert lora and any(p.abs().sum() > 0 for p in lora)


def test_an_encoder_family_tailor_does_not_know_is_refused_naming_the_supported_ones(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    model = DistilBertModel(DistilBertConfig(vocab_size=50, dim=16, n_layers=2, n_heads=2, hidden_dim=32))
    with pytest.raises(RefusedError, match=r"base model type 'distilbert' .* supported: bert, camembert, deberta-v2"):
        family_of(model)


def test_the_default_number_of_adapted_blocks_scales_with_depth():
    assert [upper_blocks(n) for n in (1, 4, 6, 12, 24)] == [1, 1, 2, 4, 8]
    assert set(FAMILIES) >= {"bert", "roberta", "xlm-roberta", "electra", "deberta-v2", "modernbert"}


def test_a_mecab_japanese_bert_trains_and_is_evaluated_on_the_japanese_holdout(bases, tmp_path):
    """fugashi + unidic-lite split the words, WordPiece the rest: the Tohoku-style Japanese BERT."""
    import yaml

    from pipelines.evaluation.checks.suite import evaluate
    from pipelines.policy import DEFAULT_POLICY, load_policy

    base = bases["bert-ja-mecab"]
    assert type(base.tokenizer).__name__ == "BertJapaneseTokenizer"
    assert base.tokenizer.tokenize("ガス代の請求") == ["ガス", "代", "の", "請求"]  # MeCab's words, not characters
    adapter, excel = tmp_path / "adapter", tmp_path / "excel.csv"
    excel.write_bytes((DATA / "sample_ja" / "train.csv").read_text(encoding="utf-8").encode("cp932"))
    result = train(
        read_batch(excel, max_bytes=BATCH_LIMIT, encoding="cp932"),
        adapter,
        base=base,
        params=TrainParams(min_steps=4, max_steps=4, noise_filter="none", max_length=48, select="lora"),
    )
    assert result.encoding == "cp932"
    policy = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    # A random-weight model: the baselines beat it, which is not what this test is about.
    policy["quality"].update(min_macro_f1=0.0, max_loss_to_baseline=1.0)
    policy["bias"]["max_gap"] = 1.0
    # Nor is load: against a tiny base, the adapter's fixed cost per layer is a large share of each millisecond, and
    # a busy machine pushed its p95 ratio past the 1.5 meant for real models (1.514 beside a benchmark); its throughput
    # ratio and base spread likewise.
    policy["load"].update(ANY_MACHINE_LOAD, max_p95_ms=60000, max_rss_mb=8192)
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    decision = evaluate(
        adapter,
        read_batch(DATA / "sample_ja" / "holdout.csv", max_bytes=BATCH_LIMIT),
        load_policy(tmp_path / "policy.yaml"),
        base_model_dir=base.model_dir,
        base_model_id="bert-ja-mecab",
        cache_dir=None,
        out_dir=adapter,
    )
    assert decision.passed, [f.describe() for f in decision.failures]
    assert (adapter / "gate_decision.json").is_file()


def test_a_mecab_tokenizer_without_fugashi_is_refused_naming_what_to_install(bases, monkeypatch):
    import sys

    from serving.encoder import load_tokenizer

    monkeypatch.setitem(sys.modules, "fugashi", None)  # as if it were not installed
    with pytest.raises(
        RefusedError, match=r"tokenizer needs a package that is not installed.*pip install fugashi unidic-lite"
    ):
        load_tokenizer(bases["bert-ja-mecab"].model_dir)
