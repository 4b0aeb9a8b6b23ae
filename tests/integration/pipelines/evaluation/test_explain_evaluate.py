"""Explanations of a really trained adapter (the real base model, the sample data): removing the top-attributed
words costs the prediction more than removing random ones, and evaluation stores explanations that the
registry's audit report shows as highlighted Japanese text."""

from __future__ import annotations

import json
import shutil
import threading
import uuid
from html import escape

import numpy as np
import pytest

from pipelines.batches.read import read_batch
from pipelines.evaluation.checks.suite import evaluate
from pipelines.evaluation.holdout_explanations import ExplainBudget
from pipelines.policy import DEFAULT_POLICY, DataPolicy, load_policy
from pipelines.settings import load_settings
from registry.explanations import EXPLANATIONS_FILE, read_report
from serving.explain import explain
from tests.conftest import REPO, run_cli

BATCH_LIMIT = DataPolicy().max_file_bytes  # the shipped policy's data.max_file_mb

pytestmark = [pytest.mark.integration]

DATA = REPO / "data"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An adapter trained on the English sample (about 10 s): a model that has learnt which words matter."""
    from pipelines.training.params import TrainParams
    from pipelines.training.recipe import train
    from serving.model import load_base, load_classifier

    folder = tmp_path_factory.mktemp("explain-trained")
    base = load_base(load_settings().base_model_dir, model_id="all-MiniLM-L6-v2", cache_dir=folder)
    train(
        read_batch(DATA / "sample" / "train.csv", max_bytes=BATCH_LIMIT),
        folder / "adapter",
        base=base,
        params=TrainParams(noise_filter="none", select="lora"),
        seed=0,
    )
    return load_classifier(folder / "adapter", base)


def test_removing_the_top_attributed_words_lowers_the_probability_more_than_removing_random_ones(trained):
    texts = read_batch(DATA / "sample" / "holdout.csv", max_bytes=BATCH_LIMIT).texts[:10]
    found = [explain(trained, text, steps=16).faithfulness for text in texts]
    top = np.array([f.comprehensiveness for f in found])
    random = np.array([f.random_comprehensiveness for f in found])
    assert top.mean() > random.mean() + 0.15, (top, random)
    assert (top > random).sum() >= 8, (top, random)
    # the top words alone keep most of the prediction: sufficiency far below comprehensiveness
    assert np.mean([f.sufficiency for f in found]) < top.mean()


def test_evaluate_stores_explanations_within_budget_and_the_report_shows_them_in_japanese(trained, s3_server, tmp_path):
    folder = tmp_path / "candidate"
    shutil.copytree(trained.adapter_dir, folder)
    holdout = read_batch(
        DATA / "sample_ja" / "holdout.csv", max_bytes=BATCH_LIMIT
    )  # Japanese rows for an English-trained adapter
    evaluate(
        folder,
        holdout,
        load_policy(DEFAULT_POLICY),
        base_model_dir=load_settings().base_model_dir,
        base_model_id="all-MiniLM-L6-v2",
        cache_dir=folder,
        adapter_ref="tickets:candidate",
        out_dir=folder,
        explain_budget=ExplainBudget(rows=3, steps=8),
    )
    stored = read_report((folder / EXPLANATIONS_FILE).read_bytes())
    assert stored.adapter == "tickets:candidate" and (stored.max_rows, stored.steps) == (3, 8)
    assert stored.wrong_total + stored.right_total == len(holdout) and len(stored.rows) == 3
    assert [r.correct for r in stored.rows] == sorted(r.correct for r in stored.rows)  # wrong ones first
    first = stored.rows[0]
    assert first.explanation.text == holdout.texts[holdout.ids.index(first.id)]
    assert first.explanation.steps == 8 and first.explanation.method == "integrated_gradients"

    name = f"explain-{uuid.uuid4().hex[:8]}"
    trainer = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    done = run_cli("register", str(folder), "--name", name, "--reason", "explained", env=trainer)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "report.html"
    done = run_cli("report", name, "v1", "--out", str(out), "--json", env=s3_server.env(TAILOR_ROLE="reader"))
    assert done.returncode == 0, done.stderr
    assert EXPLANATIONS_FILE not in json.loads(done.stdout)["evidence"]  # rendered, not dumped as JSON
    html = out.read_text(encoding="utf-8")
    assert "<h2>判定の根拠（どの語が判定を決めたか）</h2>" in html  # the report is in Japanese unless --lang en
    span = max(first.explanation.spans, key=lambda s: s.attribution)
    assert f'title="{span.attribution:+.4f}">{escape(span.text)}</span>' in html  # Japanese as written, highlighted
    assert f"row <code>{first.id}</code>" in html


def test_explaining_runs_beside_the_other_checks_and_ends_before_the_load_probe_times(trained, monkeypatch, tmp_path):
    from pipelines.evaluation.checks import cost, load, suite

    folder = tmp_path / "candidate"
    shutil.copytree(trained.adapter_dir, folder)
    cost_checked, seen = threading.Event(), []
    explain_holdout, cost_run, probe_result = suite.explain_holdout, cost.run, load.Probe.result

    def explain_after_cost(*args):
        # Run one after the other, the cost check would only start once this gave up waiting.
        seen.append(("cost checked meanwhile", cost_checked.wait(timeout=60)))
        report = explain_holdout(*args)
        seen.append(("explained", threading.current_thread() is not threading.main_thread()))
        return report

    def cost_check(*args, **kwargs):
        cost_checked.set()
        return cost_run(*args, **kwargs)

    def probe_times(probe):
        seen.append(("probe timed", True))
        return probe_result(probe)

    monkeypatch.setattr(suite, "explain_holdout", explain_after_cost)
    monkeypatch.setattr(cost, "run", cost_check)
    monkeypatch.setattr(load.Probe, "result", probe_times)
    evaluate(
        folder,
        read_batch(DATA / "sample" / "holdout.csv", max_bytes=BATCH_LIMIT),
        load_policy(DEFAULT_POLICY),
        base_model_dir=load_settings().base_model_dir,
        base_model_id="all-MiniLM-L6-v2",
        cache_dir=folder,
        out_dir=folder,
        explain_budget=ExplainBudget(rows=2, steps=4),
    )
    assert seen == [("cost checked meanwhile", True), ("explained", True), ("probe timed", True)]
    assert len(read_report((folder / EXPLANATIONS_FILE).read_bytes()).rows) == 2
