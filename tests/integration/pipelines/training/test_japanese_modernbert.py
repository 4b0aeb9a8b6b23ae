"""A Japanese batch on a tiny ModernBERT (SentencePiece-style tokenizer trained on Japanese, random
weights), end to end through the CLI: validate → train → evaluate → register → promote → serve."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import uuid

import httpx
import pytest
import yaml

from pipelines.policy import DEFAULT_POLICY
from pipelines.settings import Settings
from tests.conftest import ANY_MACHINE_LOAD, TAILOR, run_cli
from tests.tiny_encoders import DATA, build

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SAMPLE = DATA / "sample_ja"


@pytest.fixture(scope="module")
def world(s3_server, tmp_path_factory):
    """The tiny model as the configured base, a relaxed policy (random weights learn little: this is
    about the code path, not accuracy) and a short training schedule."""
    root = tmp_path_factory.mktemp("ja-modernbert")
    base = build("modernbert", root / "tiny-modernbert-ja")
    policy = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    # A random-weight model: the baselines beat it, which is not what this test is about.
    policy["quality"].update(min_macro_f1=0.0, max_loss_to_baseline=1.0)
    policy["bias"]["max_gap"] = 1.0
    # Nor is load: a tiny model's milliseconds spread widely on a busy machine, which the gate would call "not judged",
    # and its ratios to the bare base are not those of a real model (the adapter's fixed cost per layer weighs more).
    policy["load"].update(ANY_MACHINE_LOAD, max_p95_ms=60000, max_rss_mb=8192)
    policy["cost"]["max_train_seconds"] = 36000
    (root / "policy.yaml").write_text(yaml.safe_dump(policy))
    (root / "params.yaml").write_text("train:\n  min_steps: 6\n  max_steps: 6\n  noise_filter: none\n  select: lora\n")
    env = s3_server.env(
        TAILOR_BASE_MODEL=str(base),
        TAILOR_BASE_MODEL_ID="test/tiny-modernbert-ja",
        TAILOR_POLICY=str(root / "policy.yaml"),
        TAILOR_DATA_DIR=str(root / "data"),
    )
    return {"root": root, "base": base, "env": env, "name": f"ja-{uuid.uuid4().hex[:6]}"}


def _ok(result) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_cp932_batch_reads_with_encoding_and_only_a_japanese_tokenizer_covers_it(world, tmp_path):
    excel = tmp_path / "excel.csv"  # as Japanese Excel saves "CSV": Shift_JIS / CP932
    excel.write_bytes((SAMPLE / "train.csv").read_text(encoding="utf-8").encode("cp932"))
    args = (
        "validate",
        str(excel),
        "--labels",
        str(SAMPLE / "labels.txt"),
        "--no-track",
        "--no-noise-audit",
        "--encoding",
        "cp932",
        "--json",
    )
    report = _ok(run_cli(*args, env=world["env"], cwd=world["root"]))
    assert report["accepted"] and report["rows"] == 48 and report["coverage"]["unknown_token_share"] == 0.0
    default = Settings().base_model_dir  # the shipped English all-MiniLM-L6-v2
    refused = run_cli(*args, "--base-model", str(default), env=world["env"], cwd=world["root"])
    assert refused.returncode == 1
    report = json.loads(refused.stdout)
    assert report["coverage"]["unknown_token_share"] > 0.05
    assert "cannot read this text" in report["failures"][0]["examples"][0]
    assert excel.read_bytes() == (SAMPLE / "train.csv").read_text(encoding="utf-8").encode("cp932")  # never moved


def test_train_evaluate_register_promote_and_serve(world):
    root, env, name = world["root"], world["env"], world["name"]
    adapter, excel = root / "adapter", root / "train-cp932.csv"
    excel.write_bytes((SAMPLE / "train.csv").read_text(encoding="utf-8").encode("cp932"))
    trained = _ok(
        run_cli(
            "train",
            "--data",
            str(excel),
            "--encoding",
            "cp932",
            "--out",
            str(adapter),
            "--params",
            str(root / "params.yaml"),
            "--json",
            env=env,
            cwd=root,
        )
    )
    assert "ガス代の請求額が倍になっていて、差額を返してほしい" in (adapter / "reference.csv").read_text(
        encoding="utf-8"
    )
    assert trained["base_model_id"] == "test/tiny-modernbert-ja"  # the configured id, not the MiniLM default
    assert trained["encoding"] == "cp932"
    decision = _ok(
        run_cli(
            "evaluate", "--adapter", str(adapter), "--data", str(SAMPLE / "holdout.csv"), "--json", env=env, cwd=root
        )
    )
    assert decision["passed"], decision["failures"]
    _ok(
        run_cli(
            "register",
            str(adapter),
            "--name",
            name,
            "--reason",
            "japanese",
            "--json",
            env={**env, "TAILOR_ROLE": "trainer", "TAILOR_ACTOR": "alice"},
            cwd=root,
        )
    )
    _ok(
        run_cli(
            "promote",
            name,
            "v1",
            "--to",
            "production",
            "--reason",
            "gate passed",
            "--json",
            env={**env, "TAILOR_ROLE": "approver", "TAILOR_ACTOR": "bob"},
            cwd=root,
        )
    )

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [TAILOR, "serve", "--port", str(port), "--name", name],
        cwd=root,
        env={**env, "TAILOR_ROLE": "reader"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tailor serve not ready after 120 s"
            time.sleep(0.2)
        texts = ["ガス代の請求が二重になっています", "ﾊﾟｽﾜｰﾄﾞを忘れました"]
        response = httpx.post(f"{url}/predict", json={"texts": texts}, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["adapter"] == name and len(body["predictions"]) == 2
        assert {p["label"] for p in body["predictions"]} <= {
            "card_lost",
            "refund_request",
            "login_problem",
            "delivery_delay",
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
