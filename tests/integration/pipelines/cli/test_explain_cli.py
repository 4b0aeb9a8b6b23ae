"""`tailor explain`: the explanation of one text by an adapter, as JSON or for a person; bad references refused."""

from __future__ import annotations

import json
import os

import pytest

from pipelines.cli.explain import describe
from serving.explain import explain
from tests.conftest import run_cli
from tests.tiny_encoders import tiny_adapter

JA = "荷物がまだ届きません"


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    classifier = tiny_adapter("bert", root)
    env = {
        **os.environ,
        "TAILOR_BASE_MODEL": str(root / "bert"),
        "TAILOR_BASE_MODEL_ID": "bert",
        "TAILOR_HOME": str(root / "home"),
    }
    return classifier, env


def test_a_folders_explanation_comes_out_as_json(adapter):
    classifier, env = adapter
    r = run_cli("explain", str(classifier.adapter_dir), "--text", JA, "--steps", "4", "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["adapter"] == str(classifier.adapter_dir)
    e = out["explanation"]
    assert e["steps"] == 4 and "".join(s["text"] for s in e["spans"]) == JA
    assert e["label"] == classifier.predict([JA])[0]


def test_a_reference_that_is_neither_a_version_nor_a_folder_is_refused(adapter):
    r = run_cli("explain", "no-such-thing", "--text", JA, env=adapter[1])
    assert r.returncode == 1
    assert "'no-such-thing' is neither NAME:VERSION nor an adapter folder" in r.stderr


def test_the_text_output_lists_the_strongest_spans_and_the_faithfulness(adapter):
    e = explain(adapter[0], JA, steps=4)
    lines = describe("tickets:v2", e).splitlines()
    assert lines[0].startswith(
        f"tickets:v2: {e.label} (probability {e.probability:.3f}); integrated gradients, 4 steps"
    )
    strongest = max(e.spans, key=lambda s: s.attribution)
    assert lines[1] == f"  {strongest.attribution:+.4f}  {strongest.text}"
    assert lines[-1].startswith(f"top {e.faithfulness.top_k} span(s) removed: probability")


def test_serve_refuses_explain_settings_without_explain(adapter):
    r = run_cli("serve", "--name", "tickets", "--explain-steps", "8", env=adapter[1])
    assert r.returncode == 2
    assert (
        "--explain-per-minute and --explain-steps set how POST /explain answers: give them with --explain" in r.stderr
    )
