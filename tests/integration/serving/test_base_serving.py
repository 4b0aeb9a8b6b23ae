"""Serving over a registered base, end to end against the real SeaweedFS: `tailor base add`, an adapter
trained with ``base_model = NAME``, registered and promoted, then `tailor serve` on a machine whose base
cache is empty fetches the base by sha256 and answers /predict; a replaced stored file is refused by name."""

from __future__ import annotations

import json
import shutil
import signal
import socket
from pathlib import Path

import httpx
import pytest

from pipelines.batches.read import read_batch
from pipelines.policy import DataPolicy
from pipelines.settings import load_settings
from pipelines.training.params import TrainParams
from pipelines.training.recipe import train
from registry.base_manifest import blob_key
from registry.governance import RegistryRules
from registry.registry import Registry
from registry.store import S3ObjectStore
from serving.model import load_base
from tests.conftest import TAILOR, run_cli
from tests.serve_process import start_serve
from tests.tiny_encoders import DATA, build

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build("bert", tmp_path_factory.mktemp("base") / "tiny-bert")


@pytest.fixture(scope="module")
def served_base(s3_server, tiny, tmp_path_factory):
    """A base of its own bytes (its special_tokens_map.json is stored by no other test, so replacing
    it harms none), added with `tailor base add`; an adapter trained on it by name, in production."""
    import uuid

    name = f"base-{uuid.uuid4().hex[:8]}"
    root = tmp_path_factory.mktemp("served-base")
    folder = Path(shutil.copytree(tiny, root / "model"))
    (folder / "special_tokens_map.json").write_text(json.dumps({"unk_token": "[UNK]", "note": name}))
    added = run_cli(
        "base",
        "add",
        str(folder),
        "--name",
        name,
        "--json",
        env=s3_server.env(TAILOR_ROLE="trainer", TAILOR_ACTOR="alice"),
    )
    assert added.returncode == 0, added.stderr
    with pytest.MonkeyPatch.context() as mp:
        for key, value in s3_server.env(TAILOR_BASE_MODEL=name).items():
            if key.startswith("TAILOR_"):
                mp.setenv(key, value)
        settings = load_settings()
        base = load_base(settings.base_model_dir, model_id=settings.model_id_of(None), cache_dir=settings.home)
    train(
        read_batch(DATA / "sample_ja" / "train.csv", max_bytes=DataPolicy().max_file_bytes),
        root / "adapter",
        base=base,
        params=TrainParams(min_steps=2, max_steps=2, noise_filter="none", max_length=32),
    )
    admin = s3_server.settings("admin", "alice")
    registry = Registry(
        S3ObjectStore(admin),
        admin,
        base_model=base.fingerprint,
        rules=RegistryRules(four_eyes_production=False, require_gate=False),
    )
    adapter = f"on-{name}"
    registry.register(root / "adapter", adapter, reason="trained on a registered base")
    registry.promote(adapter, "v1", "production", reason="serve it")
    return {"name": name, "adapter": adapter, "manifest": json.loads(added.stdout), "root": root}


def _serve(s3_server, served_base):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cache = s3_server.home / "bases" / served_base["name"]
    shutil.rmtree(cache, ignore_errors=True)  # this machine has never fetched the base
    env = s3_server.env(TAILOR_ROLE="reader", TAILOR_BASE_MODEL=served_base["name"])
    args = [TAILOR, "serve", "--port", str(port), "--name", served_base["adapter"]]
    return args, env, f"http://127.0.0.1:{port}", cache


def test_serve_fetches_a_registered_base_into_an_empty_cache_and_answers_predict(s3_server, served_base, tmp_path):
    args, env, url, cache = _serve(s3_server, served_base)
    proc = start_serve(args, url, env, tmp_path)
    try:
        response = httpx.post(f"{url}/predict", json={"texts": ["ガス代の請求が二重になっています"]}, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["adapter"] == served_base["adapter"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    [fetched] = cache.iterdir()
    files = served_base["manifest"]["files"]
    assert sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*") if p.is_file()) == sorted(files)
    assert (fetched / "special_tokens_map.json").read_bytes() == (
        served_base["root"] / "model" / "special_tokens_map.json"
    ).read_bytes()


def test_serve_refuses_a_base_whose_stored_file_was_replaced_naming_the_file(s3_server, served_base, tmp_path):
    admin = S3ObjectStore(s3_server.settings("admin"))
    sha = served_base["manifest"]["files"]["special_tokens_map.json"]["sha256"]
    admin.put(blob_key(sha), b'{"unk_token": "[PAD]", "note": "replaced"}')  # a new object version over the kept one
    args, env, _, cache = _serve(s3_server, served_base)

    done = run_cli(*args[1:], env=env, timeout=120)

    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        f"base model '{served_base['name']}': stored file special_tokens_map.json is corrupted; refusing it"
        in done.stderr
    )
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))  # nothing half-fetched is kept
