"""POST /explain: off unless enabled, rate-limited, answering for the version that served, 4xx for bad input.

The app runs in-process over a real follower whose registry is a fake and whose adapter is a tiny
random-weight one trained for two steps (built here).
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.follower import Follower
from serving.rate_limit import RateLimit
from serving.schemas import Explaining, Limits
from tests.tiny_encoders import tiny_adapter
from tests.unit.serving.test_serving_follower import FakeRegistry

JA = "カードを駅で落としてしまいました"


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return tiny_adapter("bert", tmp_path_factory.mktemp("route"))


def _client(classifier, explaining: Explaining | None, registry: FakeRegistry | None = None):
    registry = registry or FakeRegistry()
    if not registry.alias:
        registry.promote("tickets", "v3")
    follower = Follower(registry, lambda _folder: classifier, ["tickets"], poll_seconds=60)
    follower.load()
    return TestClient(create_app(follower, Limits(max_chars=40), explaining=explaining), base_url="http://127.0.0.1")


def test_explain_is_refused_unless_the_server_was_started_with_it(classifier):
    with _client(classifier, None) as client:
        r = client.post("/explain", json={"text": JA})
    assert r.status_code == 403
    assert r.json()["error"] == "explanations are off on this server: start tailor serve with --explain"


def test_japanese_text_is_explained_with_its_spans_by_the_version_that_served(classifier):
    with _client(classifier, Explaining(steps=4)) as client:
        r = client.post("/explain", json={"text": JA})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["adapter"], body["version"]) == ("tickets", "v3")
    e = body["explanation"]
    assert e["method"] == "integrated_gradients" and e["steps"] == 4
    assert "".join(s["text"] for s in e["spans"]) == JA
    assert e["spans"][0]["text"] == "カ" and isinstance(e["spans"][0]["attribution"], float)
    assert (
        abs(sum(s["attribution"] for s in e["spans"]) - (e["probability"] - e["baseline_probability"]))
        <= abs(e["delta"]) + 1e-5
    )
    assert e["label"] in classifier.labels and set(e["faithfulness"]) >= {"comprehensiveness", "sufficiency"}


@pytest.mark.parametrize(
    "body, status, error",
    [
        ({"text": ""}, 422, "text: empty or only whitespace"),
        ({"text": "  \n"}, 422, "text: empty or only whitespace"),
        ({"text": "荷" * 41}, 422, "text: 41 characters, the limit is 40"),
        ({"text": "\u200b\u200b"}, 422, "text: only control or invisible characters; there is nothing to classify"),
        ({"text": JA, "adapter": "emails"}, 404, "adapter 'emails' is not served here; served: tickets"),
        ({"texts": [JA]}, 422, "text: required; texts: unknown field (accepted: text, adapter)"),
        ({"text": ["荷物"]}, 422, "text: must be a string, got an array"),
        ({}, 422, "text: required"),
        ([JA], 422, 'the body must be a JSON object like {"text": "..."}, got an array'),
    ],
)
def test_bad_requests_get_a_specific_4xx(classifier, body, status, error):
    with _client(classifier, Explaining(steps=2)) as client:
        r = client.post("/explain", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error


def test_a_key_given_twice_is_refused(classifier):
    with _client(classifier, Explaining(steps=2)) as client:
        r = client.post(
            "/explain",
            content=f'{{"text": "{JA}", "text": "荷物"}}'.encode(),
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 422 and "'text' more than once" in r.json()["error"]


def test_explanations_beyond_the_rate_are_refused_with_when_to_come_back(classifier):
    with _client(classifier, Explaining(per_minute=2, steps=2)) as client:
        answers = [client.post("/explain", json={"text": JA}) for _ in range(3)]
        assert client.post("/predict", json={"texts": [JA]}).status_code == 200  # predictions are not limited
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"] == "at most 2 explanations a minute are answered: try again in 30 s"
    assert answers[2].headers["Retry-After"] == "30"


def test_the_bucket_refills_with_time():
    now = [0.0]
    rate = RateLimit(3, clock=lambda: now[0])
    assert [rate.take() for _ in range(4)] == [0.0, 0.0, 0.0, pytest.approx(20.0)]
    now[0] = 20.0
    assert rate.take() == 0.0 and rate.take() == pytest.approx(20.0)
    with pytest.raises(ValueError, match="at least 1"):
        RateLimit(0)
