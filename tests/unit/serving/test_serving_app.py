"""The HTTP contract: answers, versions, health, and a clear 4xx for every bad request.

The app runs in-process over a real follower whose registry and model are fakes.
"""

from __future__ import annotations

import json
import sys

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.follower import Follower
from serving.schemas import Limits
from tests.unit.serving.test_serving_follower import FakeRegistry, load_fake

LIMITS = Limits(max_batch=4, max_chars=50)


@pytest.fixture
def registry() -> FakeRegistry:
    reg = FakeRegistry()
    reg.promote("tickets", "v1")
    reg.promote("emails", "v2")
    return reg


def _client(registry: FakeRegistry, names: list[str], limits: Limits = LIMITS):
    follower = Follower(registry, load_fake, names, poll_seconds=60)
    follower.load()
    return TestClient(create_app(follower, limits), base_url="http://127.0.0.1"), follower


@pytest.fixture
def client(registry):
    test_client, follower = _client(registry, ["tickets", "emails"])
    with test_client:
        yield test_client


def test_predict_answers_each_text_with_label_probabilities_and_version(client):
    r = client.post("/predict", json={"texts": ["printer broken", "refund please"], "adapter": "tickets"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["adapter"], body["version"]) == ("tickets", "v1")
    assert [p["label"] for p in body["predictions"]] == ["a", "a"]
    assert body["predictions"][0]["probabilities"] == pytest.approx({"a": 0.9, "b": 0.1})


def test_text_in_any_script_or_with_emoji_and_a_stray_control_character_is_answered(client):
    texts = ["¿Dónde está mi tarjeta? 💳", "卡丢了", "refund\u0000 please"]
    r = client.post("/predict", json={"texts": texts, "adapter": "tickets"})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 3


def test_each_adapter_answers_with_its_own_version(client):
    emails = client.post("/predict", json={"texts": ["hi"], "adapter": "emails"}).json()
    assert (emails["version"], emails["predictions"][0]["label"]) == ("v2", "b")


def test_version_lists_name_version_hash_alias_and_since(client):
    adapters = {a["name"]: a for a in client.get("/version").json()["adapters"]}
    assert adapters["tickets"]["version"] == "v1"
    assert adapters["tickets"]["sha256"] == "sha-v1"
    assert adapters["tickets"]["alias"] == "production"
    assert adapters["tickets"]["since"].startswith("20")


def test_healthz_is_ok_when_every_adapter_serves_its_alias(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert {a["name"]: a["serving"] for a in body["adapters"]} == {"tickets": "v1", "emails": "v2"}


def test_healthz_reports_a_version_that_failed_to_load_while_the_old_one_answers(registry):
    test_client, follower = _client(registry, ["tickets"])
    with test_client:
        registry.broken.add("v3")
        registry.promote("tickets", "v3")
        follower.poll_once()
        health = test_client.get("/healthz").json()
        answer = test_client.post("/predict", json={"texts": ["x"]}).json()
    assert health["status"] == "degraded"
    assert health["adapters"][0]["failure"]["version"] == "v3"
    assert "sha256 mismatch" in health["adapters"][0]["failure"]["error"]
    assert answer["version"] == "v1"


def test_the_adapter_may_be_left_out_when_one_is_served(registry):
    test_client, _ = _client(registry, ["tickets"])
    with test_client:
        assert test_client.post("/predict", json={"texts": ["x"]}).json()["adapter"] == "tickets"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"texts": []}, 422, "texts: the list is empty"),
        ({"texts": ["ok", 7]}, 422, "texts[1]: must be a string, got a number"),
        ({"texts": ["ok", None]}, 422, "texts[1]: must be a string, got null"),
        ({"texts": "just one"}, 422, "texts: must be an array of strings, got a string"),
        ({"texts": ["x" * 51]}, 422, "texts[0]: 51 characters, the limit is 50"),
        ({"texts": ["a", "b", "c", "d", "e"]}, 422, "5 texts in one request, the limit is 4"),
        ({"texts": ["  "]}, 422, "texts[0]: empty or only whitespace"),
        (
            {"texts": ["ok", "\u0000\u200b\x07"], "adapter": "tickets"},
            422,
            "texts[1]: only control or invisible characters; there is nothing to classify",
        ),
        ({}, 422, "texts: required"),
        ({"texts": ["x"], "adapter": "tickets", "extra": 1}, 422, "extra: unknown field"),
        (["x"], 422, "the body must be a JSON object"),
        ({"texts": ["x"], "adapter": "nope"}, 404, "adapter 'nope' is not served here; served: tickets, emails"),
        ({"texts": ["x"]}, 422, "adapter: required when several adapters are served (tickets, emails)"),
    ],
)
def test_a_bad_request_gets_a_4xx_with_a_message(client, body, status, message):
    r = client.post("/predict", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_every_problem_of_a_request_is_listed_at_once(client):
    r = client.post("/predict", json={"texts": ["", "x" * 60], "adapter": "tickets"})
    assert r.status_code == 422
    assert r.json()["problems"] == ["texts[0]: empty or only whitespace", "texts[1]: 60 characters, the limit is 50"]


def test_a_repeated_key_is_listed_among_the_problems_like_every_other_422(client):
    r = client.post(
        "/predict",
        content=b'{"texts": ["a"], "adapter": "tickets", "adapter": "emails"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["problems"] == ["adapter: given more than once"]


@pytest.mark.parametrize(
    ("content", "headers", "status", "message"),
    [
        (b'{"texts": ["a",', {"content-type": "application/json"}, 400, "malformed JSON"),
        (b"", {"content-type": "application/json"}, 422, "the body is empty"),
        (b"texts=a", {"content-type": "application/x-www-form-urlencoded"}, 415, "Content-Type: application/json"),
        (b'{"texts": ["a"]}', {"content-type": "text/plain"}, 415, "got 'text/plain'"),
        (b"x" * (LIMITS.max_body_bytes + 1), {"content-type": "application/json"}, 413, "the limit is"),
        (
            b'{"texts": ["caf\xe9"]}',
            {"content-type": "application/json"},
            400,
            "the body is not UTF-8: byte 0xe9 at offset 15",
        ),
        # json.loads of bytes would guess these encodings and answer them 200
        (
            '{"texts": ["a"], "adapter": "tickets"}'.encode("utf-16"),
            {"content-type": "application/json"},
            400,
            "the body is not UTF-8: byte 0xff at offset 0",
        ),
        (
            '{"texts": ["a"], "adapter": "tickets"}'.encode("utf-32"),
            {"content-type": "application/json"},
            400,
            "the body is not UTF-8: byte 0xff at offset 0",
        ),
        (
            '{"texts": ["a"], "adapter": "tickets"}'.encode("utf-16-le"),
            {"content-type": "application/json"},
            400,
            "malformed JSON: Expecting property name enclosed in double quotes at character 1",
        ),
        # after a UTF-8 BOM, offsets still count from the body's first byte
        (
            b'\xef\xbb\xbf{"texts": ["caf\xe9"]}',
            {"content-type": "application/json"},
            400,
            "the body is not UTF-8: byte 0xe9 at offset 18",
        ),
        # the escape of a lone surrogate is valid JSON, but no tokenizer can encode the text (was a 500)
        (
            b'{"texts": ["ok", "caf\\ud800"], "adapter": "tickets"}',
            {"content-type": "application/json"},
            422,
            "texts[1]: an unpaired UTF-16 surrogate (U+D800) at character 3",
        ),
        (
            b'{"texts": ["\\ud800"], "adapter": "tickets"}',
            {"content-type": "application/json"},
            422,
            "texts[0]: an unpaired UTF-16 surrogate (U+D800) at character 0",
        ),
        # a JSON parser keeps the last of a repeated key silently: which adapter did the sender mean?
        (
            b'{"texts": ["a"], "adapter": "tickets", "adapter": "emails"}',
            {"content-type": "application/json"},
            422,
            "the body gives 'adapter' more than once: give each key once",
        ),
        (
            b'{"texts": ["a"], "texts": ["b"], "adapter": "tickets", "adapter": "tickets"}',
            {"content-type": "application/json"},
            422,
            "the body gives 'texts', 'adapter' more than once",
        ),
    ],
)
def test_a_body_that_is_not_valid_json_gets_a_4xx_with_a_message(client, content, headers, status, message):
    r = client.post("/predict", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_a_utf8_body_with_a_byte_order_mark_is_answered(client):
    # RFC 8259 lets a parser ignore the BOM, and some clients (.NET, PowerShell) send one
    r = client.post(
        "/predict",
        content='{"texts": ["a"], "adapter": "tickets"}'.encode("utf-8-sig"),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200, r.text


def test_a_number_longer_than_python_converts_is_a_400_that_says_so(registry):
    test_client, _ = _client(registry, ["tickets"], Limits())
    with test_client:
        r = test_client.post(
            "/predict", content=b'{"texts": [' + b"1" * 5000 + b"]}", headers={"content-type": "application/json"}
        )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == (
        f"a number in the body has more than {sys.get_int_max_str_digits()} digits; "
        'send {"texts": ["..."]} with the text as JSON strings'
    )


@pytest.mark.parametrize(("route", "example"), [("/predict", '{"texts": ["..."]}'), ("/explain", '{"text": "..."}')])
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"text": ' + b"1" * 5000 + b"}", "digits; send "),
        # Where the parser gives up depends on the interpreter (about 1,000 levels on 3.11, over 5,000 on
        # 3.13): 100,000 is past all of them, and within the default body limit.
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to parse: send "),
    ],
)
def test_an_unparsable_body_is_answered_with_the_routes_own_body_shape(registry, route, example, body, problem):
    test_client, _ = _client(registry, ["tickets"], Limits())
    with test_client:
        r = test_client.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert problem + example in r.json()["error"]


def test_a_chunked_body_without_length_is_refused(client):
    r = client.post("/predict", content=iter([b'{"texts": ["a"]}']), headers={"content-type": "application/json"})
    assert r.status_code == 411
    assert "Content-Length" in r.json()["error"]


def test_an_unknown_path_or_method_is_a_4xx_in_the_same_shape(client):
    assert client.get("/nope").json() == {"error": "Not Found", "problems": []}
    assert client.get("/predict").status_code == 405


def test_the_largest_valid_request_fits_the_body_limit(client):
    texts = ["\u00e9" * LIMITS.max_chars] * LIMITS.max_batch
    r = client.post("/predict", json={"texts": texts, "adapter": "tickets"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "example.org", "::"])
def test_serve_refuses_a_non_loopback_host_unless_allowed(host, capsys):
    from pipelines.cli.main import run

    with pytest.raises(SystemExit) as exit_info:
        run(["serve", "--name", "tickets", "--host", host])
    assert exit_info.value.code == 1
    assert f"--host {host} is not a loopback address" in capsys.readouterr().err


def test_serve_refuses_a_port_in_use_before_loading_anything(capsys):
    import socket

    from pipelines.cli.main import run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            run(["serve", "--name", "tickets", "--port", str(port)])
    assert exit_info.value.code == 1
    assert f"cannot listen on 127.0.0.1 port {port}: Address already in use" in capsys.readouterr().err


def test_serve_refuses_a_name_given_twice_as_a_usage_error(capsys):
    from pipelines.cli.main import run

    with pytest.raises(SystemExit) as exit_info:
        run(["serve", "--name", "tickets", "--name", "emails", "--name", "tickets"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--name tickets is given more than once" in err and "Traceback" not in err


def test_a_full_batch_of_full_texts_outside_the_bmp_fits_the_body_limit_as_python_escapes_it(client):
    # json.dumps writes each emoji as two \\uXXXX escapes: 12 bytes for one character
    body = json.dumps({"texts": ["\U0001f600" * LIMITS.max_chars] * LIMITS.max_batch, "adapter": "tickets"})
    r = client.post("/predict", content=body.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text


# ---- operations: Host check, request ids, metrics, readiness, access log, offline docs ----------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "10.0.0.5"])
def test_a_request_for_a_host_that_is_not_loopback_is_refused_against_dns_rebinding(registry, host):
    test_client, _ = _client(registry, ["tickets"])
    with test_client:
        r = test_client.post("/predict", json={"texts": ["x"]}, headers={"Host": host})
        assert (
            r.status_code == 421
            and "loopback names only" in r.json()["error"]
            and "--allow-remote" in r.json()["error"]
        )
        assert r.headers["x-request-id"]
        for loopback in ("localhost:8080", "LOCALHOST", "127.0.0.1", "127.0.0.2:8080", "[::1]:8080"):
            assert test_client.get("/healthz", headers={"Host": loopback}).status_code == 200


def test_allow_remote_answers_any_host_name(registry):
    follower = Follower(registry, load_fake, ["tickets"], poll_seconds=60)
    follower.load()
    with TestClient(create_app(follower, LIMITS, allow_remote=True), base_url="http://serving.example") as remote:
        assert remote.get("/healthz").status_code == 200


def test_a_request_id_is_echoed_or_made_and_a_bad_one_replaced(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz").headers["x-request-id"]
    assert len(made) == 32 and made != client.get("/healthz").headers["x-request-id"]
    assert client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"] != "bad id"
    assert client.post("/predict", json={"texts": []}, headers={"X-Request-ID": "r-1"}).headers["x-request-id"] == "r-1"


def test_metrics_count_requests_errors_and_latency_per_adapter_and_version_swaps_and_failed_loads(registry):
    import logging

    test_client, follower = _client(registry, ["tickets"])
    # Counted from the follower's hooks, not its log lines: a quiet log (or a reworded one) loses no count.
    with test_client, pytest.MonkeyPatch.context() as mp:
        mp.setattr(logging.getLogger("serving.follower"), "disabled", True)
        test_client.post("/predict", json={"texts": ["x"]})
        test_client.post("/predict", json={"texts": ["x"], "adapter": "nope"})
        registry.promote("tickets", "v2")
        follower.poll_once()
        registry.broken.add("v3")
        registry.promote("tickets", "v3")
        follower.poll_once()
        test_client.post("/predict", json={"texts": ["x"]})
        text = test_client.get("/metrics").text
    assert 'tailor_requests_total{adapter="tickets",path="/predict",status="200",version="v1"} 1.0' in text
    assert 'tailor_requests_total{adapter="tickets",path="/predict",status="200",version="v2"} 1.0' in text
    assert 'tailor_request_errors_total{adapter="",path="/predict",status="404",version=""} 1.0' in text
    assert 'tailor_request_seconds_count{adapter="tickets",path="/predict",version="v1"} 1.0' in text
    assert 'tailor_swaps_total{adapter="tickets"} 1.0' in text
    assert 'tailor_failed_loads_total{adapter="tickets"} 1.0' in text
    assert 'tailor_serving_info{adapter="tickets",alias="production",version="v2"} 1.0' in text
    assert 'tailor_load_failing{adapter="tickets"} 1.0' in text
    assert 'tailor_follower_last_poll_timestamp_seconds{adapter="tickets"}' in text


def test_readyz_is_ready_when_every_adapter_answers_and_not_once_shutdown_began(registry):
    test_client, _ = _client(registry, ["tickets"])
    with test_client:
        r = test_client.get("/readyz")
        assert r.status_code == 200 and r.json() == {"ready": True, "missing": [], "stopping": False}
    r = test_client.get("/readyz")  # the lifespan has shut down: a load balancer must stop sending
    assert r.status_code == 503 and r.json() == {"ready": False, "missing": [], "stopping": True}


def test_the_access_log_has_one_json_line_per_request_with_its_id(registry, caplog):
    follower = Follower(registry, load_fake, ["tickets"], poll_seconds=60)
    follower.load()
    with (
        TestClient(create_app(follower, LIMITS, log_access=True), base_url="http://localhost") as logged,
        caplog.at_level("INFO", logger="tailor.access"),
    ):
        logged.post("/predict", json={"texts": ["x"]}, headers={"X-Request-ID": "req-7"})
    line = json.loads(next(r.getMessage() for r in caplog.records if r.name == "tailor.access"))
    assert (line["request_id"], line["path"], line["status"], line["adapter"], line["version"]) == (
        "req-7",
        "/predict",
        200,
        "tickets",
        "v1",
    )


def test_docs_that_would_load_from_a_cdn_are_off_and_the_schema_is_served(client):
    assert client.get("/docs").status_code == 404 and client.get("/redoc").status_code == 404
    assert "/predict" in client.get("/openapi.json").json()["paths"]
