"""`tailor store start|stop|status` against a real SeaweedFS, run through the CLI as a user would."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import stat
import time
import urllib.error
import urllib.request

import pytest

from bench.embedded_store import store_env
from pipelines.servers.seaweedfs import EmbeddedStoreConfig
from registry.errors import AccessDeniedError
from registry.settings import StoreSettings
from registry.store import S3ObjectStore
from tests.conftest import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def own_store(tmp_path):
    """A server of this test's own (lifecycle tests stop and kill it)."""
    cfg = EmbeddedStoreConfig.on_free_ports(tmp_path / "store", bucket="lifecycle")
    env = store_env(cfg, tmp_path)
    yield cfg, env
    run_cli("store", "stop", env=env)


def _status(env) -> dict:
    return json.loads(run_cli("store", "status", "--json", env=env).stdout)


def test_start_serves_s3_on_loopback_and_refuses_anonymous_requests(own_store):
    cfg, env = own_store
    result = run_cli("store", "start", env=env)
    assert result.returncode == 0, result.stderr
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{cfg.s3_port}/", timeout=5)
    assert err.value.code == 403
    request = urllib.request.Request(f"http://127.0.0.1:{cfg.s3_port}/lifecycle/anon.txt", data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 403

    status = _status(env)
    assert status["healthy"] is True
    assert status["endpoint"] == f"http://127.0.0.1:{cfg.s3_port}"
    assert status["bucket"] == "lifecycle"
    assert status["data_dir"] == str(cfg.data_dir)
    assert isinstance(status["pid"], int)
    ids = json.loads(open(status["credentials_file"], encoding="utf-8").read())
    assert [i["name"] for i in ids["identities"]] == ["admin", "trainer", "approver", "reader", "recorder"]
    assert stat.S_IMODE(os.stat(status["credentials_file"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(status["data_dir"]).st_mode) == 0o700  # the volume files hold every object
    listening = [
        line
        for line in open("/proc/net/tcp", encoding="utf-8").read().splitlines()[1:]
        if line.split()[1].endswith(f":{cfg.s3_port:04X}") and line.split()[3] == "0A"
    ]
    assert listening and all(line.split()[1].startswith("0100007F") for line in listening)  # 127.0.0.1 only


def test_a_second_start_says_already_running_and_starts_nothing(own_store):
    _, env = own_store
    first = run_cli("store", "start", "--json", env=env)
    second = run_cli("store", "start", "--json", env=env)
    assert second.returncode == 0, second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert (one["started"], two["started"]) == (True, False)
    assert one["pid"] == two["pid"]
    assert "already running" in run_cli("store", "start", env=env).stdout


def test_another_bucket_needs_a_restart_which_scopes_every_role_to_it(own_store):
    cfg, env = own_store
    assert run_cli("store", "start", env=env).returncode == 0
    other = {**env, "TAILOR_BUCKET": "other"}
    switched = run_cli("store", "start", env=other)
    assert switched.returncode == 1
    assert "the running store serves bucket 'lifecycle' (its roles are scoped to it), not 'other'" in switched.stderr
    assert _status(other)["healthy"] is False  # no bucket 'other' there
    assert run_cli("store", "stop", env=env).returncode == 0
    assert run_cli("store", "start", env=other).returncode == 0, "a restart switches the bucket"
    assert _status(other)["healthy"] is True
    from pipelines.servers.seaweedfs import admin_settings

    trainer = S3ObjectStore(admin_settings(dataclasses.replace(cfg, bucket="other"), role="trainer"))
    trainer.put("adapters/x/probe.txt", b"the trainer writes the new bucket")  # refused while scoped to the old one


def test_stop_then_start_keeps_the_data_and_the_credentials(own_store):
    cfg, env = own_store
    assert run_cli("store", "start", env=env).returncode == 0
    admin = _admin(cfg)
    S3ObjectStore(admin).put("keep/me.txt", b"still here")
    stop = run_cli("store", "stop", env=env)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert cfg.socket_files() == []  # SeaweedFS leaves its sockets in /tmp; stop removes them
    assert run_cli("store", "status", env=env).returncode == 1  # not healthy → exit 1
    assert run_cli("store", "start", env=env).returncode == 0
    assert S3ObjectStore(_admin(cfg)).get("keep/me.txt") == b"still here"
    assert _admin(cfg).secret_key == admin.secret_key


def test_start_after_kill_9_clears_stale_sockets_and_comes_back(own_store):
    cfg, env = own_store
    assert run_cli("store", "start", env=env).returncode == 0
    os.kill(_status(env)["pid"], signal.SIGKILL)
    time.sleep(1)
    assert cfg.socket_files(), "a killed server leaves its sockets behind"
    restarted = run_cli("store", "start", env=env)
    assert restarted.returncode == 0, restarted.stderr
    assert _status(env)["healthy"] is True


def test_start_refuses_a_port_that_belongs_to_another_process(own_store):
    cfg, env = own_store
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", cfg.s3_port))
        squatter.listen()
        result = run_cli("store", "start", env=env)
    assert result.returncode == 1
    assert f"port {cfg.s3_port} on 127.0.0.1 is in use by another process" in result.stderr
    assert "Traceback" not in result.stderr


def test_stop_when_not_running_says_so(own_store):
    _, env = own_store
    result = run_cli("store", "stop", env=env)
    assert result.returncode == 0 and "not running" in result.stdout


def _admin(cfg) -> StoreSettings:
    from pipelines.servers.seaweedfs import admin_settings

    return admin_settings(cfg)


def test_wrong_secret_and_reader_writes_are_refused(s3_server):
    admin = s3_server.settings("admin")
    wrong = StoreSettings(
        endpoint=admin.endpoint,
        bucket=admin.bucket,
        access_key=admin.access_key,
        secret_key="not-the-secret",
        role="admin",
    )
    with pytest.raises(AccessDeniedError, match="SignatureDoesNotMatch|AccessDenied"):
        S3ObjectStore(wrong).put("x/wrong.txt", b"x")
    S3ObjectStore(admin).put("x/readable.txt", b"hello")
    reader = S3ObjectStore(s3_server.settings("reader"))
    assert reader.get("x/readable.txt") == b"hello"
    with pytest.raises(AccessDeniedError, match="role 'reader'"):
        reader.put("x/reader.txt", b"x")
    with pytest.raises(AccessDeniedError):
        reader.delete("x/readable.txt")
    assert S3ObjectStore(admin).get("x/readable.txt") == b"hello"


def test_the_approver_may_only_write_audit_events(s3_server):
    approver = S3ObjectStore(s3_server.settings("approver"))
    approver.put("audit/approver-test/000000000001.json", b"{}", create_only=True)
    with pytest.raises(AccessDeniedError):
        approver.put("adapters/approver-test/versions/v1/manifest.json", b"{}")


def test_create_only_writes_let_exactly_one_writer_win(s3_server):
    from registry.errors import AlreadyExistsError

    store = S3ObjectStore(s3_server.settings("trainer"))
    store.put("deliveries/race/one.json", b"first", create_only=True)
    with pytest.raises(AlreadyExistsError, match="already exists"):
        store.put("deliveries/race/one.json", b"second", create_only=True)
    assert store.get("deliveries/race/one.json") == b"first"
