"""`tailor serve` as a real process: real SeaweedFS, real base model, real adapters, real uvicorn.

One server for the module follows four adapter names, each its own scenario, so the tests do not
depend on each other's order:
- ``promo``: v1 in production; a test promotes v2 during a stream of requests.
- ``roll``:  v1 then v2 promoted; a test rolls back to v1 during a stream of requests.
- ``bad``:   v1 in production; a test promotes a v2 whose stored weights were corrupted.
- ``other``: a second adapter with other labels, never changed.
Two tiny adapters are trained once (3 ticket topics vs 2 urgencies); their label sets tell which
one answered any single request.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest

from pipelines.records import LabeledBatch
from pipelines.settings import load_settings
from pipelines.training.params import TrainParams
from pipelines.training.recipe import train
from registry.governance import RegistryRules
from registry.registry import Registry
from registry.store import S3ObjectStore
from serving.model import load_base, load_classifier
from tests.conftest import TAILOR, run_cli
from tests.serve_process import start_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOPICS = {
    "billing": [
        "I was charged twice on my invoice",
        "refund my payment please",
        "my card was billed wrong",
        "the invoice amount is incorrect",
        "why is there an extra fee",
        "cancel the charge on my account",
    ],
    "bug": [
        "the app crashes when I click save",
        "error 500 on the dashboard",
        "the page does not load",
        "the export button is broken",
        "the screen freezes after login",
        "the upload fails with an error",
    ],
    "login": [
        "I cannot sign in",
        "password reset email never arrives",
        "my account is locked",
        "two factor code is rejected",
        "I forgot my username",
        "login page says invalid credentials",
    ],
}
URGENCY = {
    "urgent": [
        "production is down for everyone",
        "we lose money every minute",
        "all customers see errors now",
        "the site is completely offline",
        "data is being deleted right now",
        "security breach in progress",
    ],
    "routine": [
        "small typo on the about page",
        "a question for next month",
        "nice to have a dark mode",
        "please update my address when you can",
        "a minor colour issue",
        "feedback on the newsletter",
    ],
}
PROBE = ["refund the double charge", "the app crashed again", "cannot log in since yesterday"]
SWITCH_LIMIT_S = 5.0


def _batch(rows: dict[str, list[str]]) -> LabeledBatch:
    texts = [t for label in rows for t in rows[label]]
    labels = [label for label in rows for _ in rows[label]]
    return LabeledBatch(source="test", texts=texts, labels=labels, ids=[str(i) for i in range(len(texts))])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    settings = load_settings()
    return load_base(
        settings.base_model_dir, model_id=settings.base_model_id, cache_dir=tmp_path_factory.mktemp("fingerprint")
    )


@pytest.fixture(scope="module")
def adapters(base, tmp_path_factory) -> dict[str, Path]:
    """Two tiny real adapters (4 optimiser steps each): enough to differ, cheap to make."""
    root = tmp_path_factory.mktemp("adapters")
    params = TrainParams(min_steps=4, max_steps=4, noise_filter="none", select="lora")
    return {
        "topics": Path(train(_batch(TOPICS), root / "topics", base=base, params=params, seed=1).adapter_dir),
        "urgency": Path(train(_batch(URGENCY), root / "urgency", base=base, params=params, seed=2).adapter_dir),
    }


class Roles:
    """The registry as each role sees it: trainer registers, approver promotes, admin can corrupt."""

    def __init__(self, s3_server, base) -> None:
        def registry(role: str, actor: str) -> Registry:
            settings = s3_server.settings(role, actor=actor)
            # The trained adapters carry no gate decision: gating is not what these tests are about.
            return Registry(
                S3ObjectStore(settings), settings, base_model=base.fingerprint, rules=RegistryRules(require_gate=False)
            )

        self.trainer = registry("trainer", "alice")
        self.approver = registry("approver", "bob")
        self.admin_store = S3ObjectStore(s3_server.settings("admin", actor="root"))


@pytest.fixture(scope="module")
def roles(s3_server, base) -> Roles:
    return Roles(s3_server, base)


@pytest.fixture(scope="module")
def names(roles, adapters) -> dict[str, str]:
    run = uuid.uuid4().hex[:6]
    names = {key: f"serve-{key}-{run}" for key in ("promo", "roll", "bad", "other")}
    plan = {"promo": ["topics", "urgency"], "roll": ["topics", "urgency"], "bad": ["topics"], "other": ["urgency"]}
    for key, folders in plan.items():
        for folder in folders:
            roles.trainer.register(adapters[folder], names[key], reason="serving test")
        roles.approver.promote(names[key], "v1", "production", reason="serving test")
    roles.approver.promote(names["roll"], "v2", "production", reason="serving test")
    return names


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, url: str, proc: subprocess.Popen, record: dict, ready_s: float, rss_mb: float) -> None:
        self.url, self.proc, self.record, self.ready_s, self.rss_mb = url, proc, record, ready_s, rss_mb

    def version(self, name: str) -> dict:
        return next(a for a in httpx.get(f"{self.url}/version").json()["adapters"] if a["name"] == name)

    def health(self, name: str) -> dict:
        return next(a for a in httpx.get(f"{self.url}/healthz").json()["adapters"] if a["name"] == name)


@pytest.fixture(scope="module")
def server(s3_server, names, tmp_path_factory):
    """`tailor serve` as the read-only `reader` role: serving needs no write access to the store."""
    logs = tmp_path_factory.mktemp("serve-logs")
    port = _free_port()
    args = [TAILOR, "serve", "--port", str(port), "--json", "--body-seconds", "2"]
    for name in names.values():
        args += ["--name", name]
    started = time.monotonic()
    url = f"http://127.0.0.1:{port}"
    proc = start_serve(args, url, s3_server.env(TAILOR_ROLE="reader"), logs)
    ready_s = time.monotonic() - started
    srv = Server(
        url,
        proc,
        json.loads((logs / "stdout").read_text(encoding="utf-8")),
        ready_s,
        psutil.Process(proc.pid).memory_info().rss / 2**20,
    )
    yield srv
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    # uvicorn re-raises the signal after its graceful shutdown, and Tailor ends on it as the shell's 128 + SIGTERM.
    assert code in (0, 128 + signal.SIGTERM), f"tailor serve did not stop cleanly ({code})"
    assert "stopped following" in (logs / "stderr").read_text(encoding="utf-8"), "the lifespan shutdown did not run"


def _stream(url: str, name: str, stop: threading.Event, out: list) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            try:
                r = client.post(f"{url}/predict", json={"texts": PROBE[:2], "adapter": name})
                body = r.json()
                labels = sorted(body["predictions"][0]["probabilities"]) if r.status_code == 200 else None
                out.append((r.status_code, body.get("version"), labels, body))
            except Exception as err:  # noqa: BLE001 - any failure of any kind is what the test counts
                out.append((None, None, None, repr(err)))


def _switch_under_load(server: Server, name: str, change, expected: str) -> tuple[float, list[list[tuple]]]:
    """Run 4 request streams, apply ``change``, and time how long until /version shows ``expected``."""
    stop, streams = threading.Event(), [[] for _ in range(4)]
    threads = [threading.Thread(target=_stream, args=(server.url, name, stop, out)) for out in streams]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    began = time.monotonic()
    change()
    while server.version(name)["version"] != expected and time.monotonic() - began < 30:
        time.sleep(0.1)
    switched = time.monotonic() - began
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    return switched, streams


def _assert_no_failure_and_one_switch(streams, old: str, new: str, labels: dict[str, list[str]]) -> None:
    answers = [a for s in streams for a in s]
    failed = [a for a in answers if a[0] != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed, first: {failed[0]}"
    for version, label_set, _ in ((a[1], a[2], a[3]) for a in answers):
        assert label_set == labels[version], f"{version} answered with another version's labels {label_set}"
    for stream in streams:
        versions = [a[1] for a in stream]
        assert new in versions, "every stream saw the new version"
        first_new = versions.index(new)
        assert set(versions[:first_new]) <= {old} and set(versions[first_new:]) == {new}, versions


def test_the_server_starts_with_every_adapter_at_its_production_version(server, names, roles):
    versions = {a["name"]: a for a in httpx.get(f"{server.url}/version").json()["adapters"]}
    expected = {"promo": "v1", "roll": "v2", "bad": "v1", "other": "v1"}
    for key, name in names.items():
        assert versions[name]["version"] == expected[key]
        assert versions[name]["sha256"] == roles.trainer.manifest(name, expected[key]).content_sha256
        assert versions[name]["alias"] == "production"
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "ok"
    print(
        f"\nserve start-up: ready in {server.ready_s:.1f} s (models loaded in {server.record['startup_seconds']} s), "
        f"RSS {server.rss_mb:.0f} MB with 4 adapters"
    )
    assert server.record["startup_seconds"] < 90


def test_two_adapters_served_at_once_each_give_their_own_predictions(server, names, adapters, base):
    for key, folder in (("bad", "topics"), ("other", "urgency")):
        r = httpx.post(f"{server.url}/predict", json={"texts": PROBE, "adapter": names[key]})
        assert r.status_code == 200, r.text
        local = load_classifier(adapters[folder], base)
        served = np.array([[p["probabilities"][label] for label in local.labels] for p in r.json()["predictions"]])
        np.testing.assert_allclose(served, local.predict_proba(PROBE), atol=1e-5)
    topics = httpx.post(f"{server.url}/predict", json={"texts": PROBE, "adapter": names["bad"]}).json()
    assert [p["label"] for p in topics["predictions"]] == ["billing", "bug", "login"]


def test_a_promotion_during_a_stream_of_requests_drops_none_and_switches_within_5_s(server, names, roles):
    name = names["promo"]
    switched, streams = _switch_under_load(
        server, name, lambda: roles.approver.promote(name, "v2", "production", reason="serving test"), "v2"
    )
    print(f"\npromotion: /version switched after {switched:.2f} s, {sum(map(len, streams))} requests, 0 failed")
    assert switched <= SWITCH_LIMIT_S
    _assert_no_failure_and_one_switch(streams, "v1", "v2", {"v1": sorted(TOPICS), "v2": sorted(URGENCY)})


def test_a_rollback_during_a_stream_of_requests_drops_none_and_switches_within_5_s(server, names, roles):
    name = names["roll"]
    switched, streams = _switch_under_load(
        server, name, lambda: roles.approver.rollback(name, reason="serving test"), "v1"
    )
    print(f"\nrollback: /version switched after {switched:.2f} s, {sum(map(len, streams))} requests, 0 failed")
    assert switched <= SWITCH_LIMIT_S
    _assert_no_failure_and_one_switch(streams, "v2", "v1", {"v1": sorted(TOPICS), "v2": sorted(URGENCY)})


def test_a_corrupted_new_version_is_not_served_and_healthz_says_why(server, names, roles, adapters, monkeypatch):
    name = names["bad"]
    roles.trainer.register(adapters["urgency"], name, reason="serving test")
    key = f"adapters/{name}/versions/v2/adapter_model.safetensors"
    data = bytearray(roles.admin_store.get(key))
    data[-1] ^= 0xFF
    roles.admin_store.put(key, bytes(data))
    # promote proves the files itself; here the file rots between that proof and the server's load
    monkeypatch.setattr(roles.approver, "_prove_files", lambda manifest: None)
    roles.approver.promote(name, "v2", "production", reason="serving test")
    deadline = time.monotonic() + 15
    while (health := server.health(name))["failure"] is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health["failure"] is not None, "the failure never showed in /healthz"
    assert (health["serving"], health["alias_target"], health["failure"]["version"]) == ("v1", "v2", "v2")
    assert "adapter_model.safetensors" in health["failure"]["error"]
    assert httpx.get(f"{server.url}/healthz").json()["status"] == "degraded"
    assert server.version(name)["version"] == "v1"
    r = httpx.post(f"{server.url}/predict", json={"texts": PROBE, "adapter": name})
    assert r.status_code == 200 and r.json()["version"] == "v1"


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b'{"texts": ["a"', 400, "malformed JSON"),
        (b'{"texts": []}', 422, "the list is empty"),
        (b'{"texts": ["a", 3]}', 422, "texts[1]: must be a string, got a number"),
        (json.dumps({"texts": ["x" * 2001]}).encode(), 422, "texts[0]: 2001 characters, the limit is 2000"),
        (json.dumps({"texts": ["x"] * 65}).encode(), 422, "65 texts in one request, the limit is 64"),
        (b'{"texts": ["a"], "adapter": "nope"}', 404, "adapter 'nope' is not served here"),
        (b'{"texts": ["a"]}', 422, "adapter: required when several adapters are served"),
    ],
)
def test_every_bad_request_gets_the_right_4xx_from_the_real_server(server, content, status, message):
    r = httpx.post(f"{server.url}/predict", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert server.proc.poll() is None


def test_a_body_that_does_not_arrive_in_time_gets_408_and_the_connection_is_closed(server, names):
    port = int(server.url.rsplit(":", 1)[1])
    slow = []
    for _ in range(20):  # each would otherwise hold a connection for as long as its client liked
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"te'
        )
        slow.append(sock)
    started = time.monotonic()
    for sock in slow:
        with sock:
            answer = b""
            while chunk := sock.recv(4096):  # until the server closes the connection
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in answer
    assert time.monotonic() - started < 8
    r = httpx.post(f"{server.url}/predict", json={"texts": PROBE, "adapter": names["other"]})
    assert r.status_code == 200, r.text  # whole bodies still go through the replayed receive


def test_a_name_without_a_production_version_stops_start_up_with_a_message(s3_server, roles, adapters):
    name = f"serve-none-{uuid.uuid4().hex[:6]}"
    roles.trainer.register(adapters["topics"], name, reason="serving test")
    out = run_cli(
        "serve", "--name", name, "--port", str(_free_port()), env=s3_server.env(TAILOR_ROLE="reader"), timeout=120
    )
    assert out.returncode == 1, out.stderr
    assert f"no version of '{name}' holds the alias 'production'" in out.stderr


def test_an_alias_that_is_not_one_of_the_registrys_is_a_typo_not_a_wait(s3_server):
    out = run_cli(
        "serve",
        "--name",
        "anything",
        "--alias",
        "prod",
        "--port",
        str(_free_port()),
        env=s3_server.env(TAILOR_ROLE="reader"),
        timeout=120,
    )
    assert out.returncode == 2, out.stderr  # refused as a choice, before the store is asked
    assert "Invalid value for '--alias'" in out.stderr and "'prod' is not one of 'staging', 'production'" in out.stderr
