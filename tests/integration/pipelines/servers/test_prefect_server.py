"""The persistent Prefect server, a schedule that really fires, and a second worker process pulling
work from a work pool (the multi-machine path), all on loopback with the real SeaweedFS."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipelines.servers.prefect import CRASH_AUTOMATION
from tests.conftest import REPO, TAILOR, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PREFECT = str(Path(TAILOR).parent / "prefect")
SAMPLE = REPO / "data" / "sample"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(s3_server, tmp_path_factory):
    """`tailor prefect start` on a free port with its home in a temp folder; stopped at the end."""
    home = tmp_path_factory.mktemp("prefect-home")
    # Heartbeats every 30 s (Prefect's minimum; default 180) so that a killed run is found in 90 s.
    env = s3_server.env(
        TAILOR_PREFECT_HOME=str(home),
        TAILOR_PREFECT_PORT=str(free_port()),
        TAILOR_DATA_DIR=str(home / "data"),
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30",
    )
    env.pop("PREFECT_API_URL", None)
    started = run_cli("prefect", "start", "--json", "--timeout", "300", env=env, timeout=330)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    yield {"env": env, "api": info["api_url"], "home": home, "info": info}
    stopped = run_cli("prefect", "stop", "--json", env=env)
    assert json.loads(stopped.stdout) == {"stopped": True}


def flow_runs(api: str, flow_name: str) -> list[dict]:
    body = {"flows": {"name": {"any_": [flow_name]}}}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()


def test_prefect_start_is_idempotent_and_healthy(server):
    assert server["info"]["started"] and server["info"]["healthy"]

    again = run_cli("prefect", "start", "--json", env=server["env"])

    assert again.returncode == 0 and json.loads(again.stdout)["started"] is False
    assert json.loads(again.stdout)["pid"] == server["info"]["pid"]
    assert httpx.get(f"{server['api']}/health", timeout=5).json() is True


SLEEPY_FLOW = """
import time
from prefect import flow

@flow(name="sleepy")
def sleepy():
    time.sleep(600)

sleepy()
"""


def test_a_flow_run_whose_process_was_killed_is_marked_crashed_not_left_running(server, tmp_path):
    env = {**server["env"], "PREFECT_API_URL": server["api"], "PREFECT_HOME": str(server["home"])}
    proc = subprocess.Popen([sys.executable, "-c", SLEEPY_FLOW], env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not [
            r for r in flow_runs(server["api"], "sleepy") if r["state_type"] == "RUNNING"
        ]:
            assert proc.poll() is None
            time.sleep(1)
        time.sleep(3)  # its first heartbeat goes out as it starts running
    finally:
        proc.kill()  # as kill -9, a reboot or the out-of-memory killer would
        proc.wait()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        [run] = flow_runs(server["api"], "sleepy")
        if run["state_type"] != "RUNNING":
            break
        time.sleep(5)
    assert run["state_type"] == "CRASHED" and "no heartbeat for 90 s" in run["state"]["message"]
    again = run_cli("prefect", "start", env=server["env"])  # idempotent: one automation, not two
    automations = httpx.post(f"{server['api']}/automations/filter", json={}, timeout=10).json()
    assert again.returncode == 0 and [a["name"] for a in automations].count(CRASH_AUTOMATION) == 1
    # Slower heartbeats need a longer window, or live runs would be marked Crashed.
    slower = run_cli("prefect", "start", env={**server["env"], "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60"})
    [automation] = [
        a
        for a in httpx.post(f"{server['api']}/automations/filter", json={}, timeout=10).json()
        if a["name"] == CRASH_AUTOMATION
    ]
    assert slower.returncode == 0 and automation["trigger"]["within"] == 180


def test_prefect_start_refuses_a_port_held_by_another_process(s3_server, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = s3_server.env(TAILOR_PREFECT_HOME=str(tmp_path), TAILOR_PREFECT_PORT=str(port))

        result = run_cli("prefect", "start", env=env)

    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use by another process" in result.stderr
    assert not (tmp_path / "server.pid").exists()


def test_a_per_minute_schedule_fires_and_retrains_only_on_a_new_batch(server, unique_name, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    batch = incoming / "broken.csv"
    batch.write_text("")  # a batch that arrives broken: the scheduled run must take it in and quarantine it
    os.utime(batch, (time.time() - 600, time.time() - 600))  # arrived (settled) ten minutes ago
    env = server["env"]  # no PREFECT_API_URL: the server is found from Tailor's settings, as a user runs it
    proc = subprocess.Popen(
        [
            TAILOR,
            "schedule",
            "--name",
            unique_name,
            "--cron",
            "* * * * *",
            "--watch",
            str(incoming),
            "--holdout",
            str(SAMPLE / "holdout.csv"),
            "--labels",
            str(SAMPLE / "labels.txt"),
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    state_file = Path(env["TAILOR_HOME"]) / "schedule" / f"{unique_name}.json"
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not state_file.exists():
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(2)
        assert state_file.exists(), "the per-minute schedule did not fire within 150 s"
        [entry] = json.loads(state_file.read_text(encoding="utf-8"))
        assert entry["file"] == "broken.csv" and entry["status"] == "rejected_data"
        assert not batch.exists() and list((Path(env["TAILOR_DATA_DIR"]) / "quarantine").glob("*/broken.csv"))
        runs = [r for r in flow_runs(server["api"], "watch") if r["state_type"] == "COMPLETED"]
        assert runs and all(r["deployment_id"] for r in runs)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    output = proc.stdout.read()
    # Prefect once read its API URL before Tailor set it, started a temporary server of its own, and
    # printed tracebacks when SIGTERM stopped it.
    assert "temporary server" not in output and "Traceback" not in output, output


def test_a_second_worker_process_pulls_a_flow_run_from_a_work_pool(server, s3_server, unique_name, tmp_path):
    from pipelines.settings import load_settings
    from registry.fingerprint import base_model_fingerprint
    from registry.registry import Registry
    from registry.store import S3ObjectStore
    from tests.registry_helpers import make_adapter_folder

    settings = load_settings()
    base = base_model_fingerprint(settings.base_model_dir, settings.base_model_id, cache_dir=tmp_path)
    trainer = s3_server.settings("trainer", actor="trainer-tom")
    registry = Registry(S3ObjectStore(trainer), trainer, base_model=base)
    for seed, version in ((1, "v1"), (2, "v2")):
        registry.register(make_adapter_folder(tmp_path / version, base, seed=seed), unique_name)
        registry.promote(unique_name, version, "staging", reason=f"stage {version}")
    env = {
        **server["env"],
        "PREFECT_API_URL": server["api"],
        "TAILOR_REPO": str(REPO),
        "TAILOR_ROLE": "trainer",
        "TAILOR_ACTOR": "worker-wendy",
    }
    pool = "tailor-cpu"

    def prefect(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        done = subprocess.run([PREFECT, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    prefect("work-pool", "create", pool, "--type", "process", "--overwrite")
    prefect("--no-prompt", "deploy", "--prefect-file", "infra/prefect/prefect.yaml", "--name", "rollback/ui")
    prefect(
        "deployment",
        "run",
        "rollback/ui",
        "--param",
        f"name={unique_name}",
        "--param",
        "alias=staging",
        "--param",
        "reason=v2 misbehaves",
    )

    worker = subprocess.run(
        [PREFECT, "worker", "start", "--pool", pool, "--type", "process", "--run-once", "--install-policy", "never"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )

    [run] = [r for r in flow_runs(server["api"], "rollback") if r["parameters"].get("name") == unique_name]
    assert run["state_type"] == "COMPLETED", worker.stdout[-3000:] + worker.stderr[-3000:]
    assert registry.aliases(unique_name)["staging"] == "v1"
    last = registry.events(unique_name)[-1]
    assert (last.action, last.actor, last.alias_before, last.alias_after) == ("rollback", "worker-wendy", "v2", "v1")
