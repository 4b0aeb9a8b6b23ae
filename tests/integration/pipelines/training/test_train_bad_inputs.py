"""`tailor train` refuses bad inputs with a message a user can act on, before any training, and
never touches data that is already there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.unit.pipelines.training.test_train_refusals import DAMAGES, GOOD, _damaged_model, write_batch


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    home = tmp_path / "home"
    return {**{k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}, "TAILOR_HOME": str(home)}


def train(tmp_path, env, *args: str):
    return run_cli("train", *args, env=env, cwd=tmp_path, timeout=180)


@pytest.mark.parametrize(
    "rows, fragments",
    [
        ([(f"text {i}", "only") for i in range(6)], ["at least 2 classes", "'only'"]),
        (GOOD + [("lonely text", "rare")], ["every class needs at least 2", "'rare' has 1"]),
        (
            GOOD + [("   ", "card"), ("a text without a label", "")],
            ["2 row(s) have an empty text or label (ids 9, 10)", "tailor validate"],
        ),
        # 'card ' would train as a class of its own beside 'card'
        (GOOD + [("lost my card", "card "), ("card gone", "card ")], ["spaces around them", "'card '"]),
    ],
    ids=["a single class", "too few examples", "an empty text or label", "a label with spaces around it"],
)
def test_data_that_cannot_train_a_classifier_is_refused_naming_why_and_nothing_is_written(
    tmp_path, env, rows, fragments
):
    data = write_batch(tmp_path / "batch.csv", rows)
    res = train(tmp_path, env, "--data", str(data), "--out", str(tmp_path / "out"))
    assert res.returncode == 1
    assert all(fragment in res.stderr for fragment in fragments), res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_outside_the_unsigned_32_bit_range_is_a_usage_error(tmp_path, env, seed):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    res = train(tmp_path, env, "--data", str(data), "--out", str(tmp_path / "out"), "--seed", seed)
    assert res.returncode == 2
    assert "--seed" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists()


def test_an_existing_output_folder_is_refused_without_force_and_kept(tmp_path, env):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    res = train(tmp_path, env, "--data", str(data), "--out", str(out))
    assert res.returncode == 1
    assert "already exists" in res.stderr and "--force" in res.stderr
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_force_does_not_replace_a_folder_holding_user_files(tmp_path, env):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    out = tmp_path / "out"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    res = train(tmp_path, env, "--data", str(data), "--out", str(out), "--force")
    assert res.returncode == 1
    assert "--force refused" in res.stderr and "thesis.docx" in res.stderr
    assert (out / "thesis.docx").read_text(encoding="utf-8") == "years of work"


def test_an_out_that_is_a_file_or_an_unwritable_place_is_refused_before_training(tmp_path):
    from pipelines.training.publish import prepare_output
    from registry.errors import RefusedError

    (tmp_path / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(RefusedError, match="notes.txt exists and is not a folder"):
            prepare_output(tmp_path / "notes.txt", force)
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine"
    with pytest.raises(RefusedError, match="cannot write the adapter into /proc"):
        prepare_output(Path("/proc/tailor-adapter"), False)


def test_an_unknown_device_is_a_usage_error(tmp_path, env):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    res = train(tmp_path, env, "--data", str(data), "--out", str(tmp_path / "out"), "--device", "tpu")
    assert res.returncode == 2
    assert "Invalid value for '--device'" in res.stderr and "'auto', 'cpu', 'cuda'" in res.stderr


def test_an_unknown_noise_filter_is_a_usage_error_naming_the_option_not_the_params_file(tmp_path, env):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    res = train(tmp_path, env, "--data", str(data), "--out", str(tmp_path / "out"), "--noise-filter", "bogus")
    assert res.returncode == 2
    assert "Invalid value for '--noise-filter'" in res.stderr and "'auto', 'cleanlab', 'none'" in res.stderr


def test_cuda_asked_for_without_cuda_is_refused(tmp_path, env):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    data = write_batch(tmp_path / "ok.csv", GOOD)
    res = train(tmp_path, env, "--data", str(data), "--out", str(tmp_path / "out"), "--device", "cuda")
    assert res.returncode == 1
    assert "CUDA is not available" in res.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_base_model_folder_is_named(tmp_path, env):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    res = train(
        tmp_path,
        env,
        "--data",
        str(data),
        "--out",
        str(tmp_path / "out"),
        "--base-model",
        str(tmp_path / "no-such-model"),
    )
    assert res.returncode == 1
    assert "no-such-model does not exist" in res.stderr
    assert not (tmp_path / "out").exists()


def test_a_base_model_folder_without_weights_is_refused(tmp_path, env):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    model = tmp_path / "empty-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}')
    res = train(tmp_path, env, "--data", str(data), "--out", str(tmp_path / "out"), "--base-model", str(model))
    assert res.returncode == 1
    assert "holds no *.safetensors weights" in res.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "params, message",
    [
        ("train:\n  lora_targets: [nope]\n", "lora_targets ['nope'] name no module of the adapted blocks"),
        # select: lora, or a batch this small keeps the probe without one LoRA step (nothing to diverge)
        ("train:\n  lr: 1.0e9\n  head_lr: 1.0e9\n  select: lora\n", "diverged"),
    ],
)
def test_params_that_cannot_train_are_refused_in_one_line_and_nothing_is_written(tmp_path, env, params, message):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    (tmp_path / "p.yaml").write_text(params)
    res = train(
        tmp_path,
        env,
        "--data",
        str(data),
        "--out",
        str(tmp_path / "out"),
        "--params",
        str(tmp_path / "p.yaml"),
        "--device",
        "cpu",
    )
    assert res.returncode == 1, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_a_base_model_without_a_tokenizer_vocabulary_is_refused(tmp_path, env):
    from pipelines.settings import load_settings

    shipped = load_settings().base_model_dir
    bare = tmp_path / "bare-model"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).symlink_to(shipped / name)
    data = write_batch(tmp_path / "ok.csv", GOOD)
    res = train(tmp_path, env, "--data", str(data), "--out", str(tmp_path / "out"), "--base-model", str(bare))
    assert res.returncode == 1
    assert "has no tokenizer vocabulary" in res.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("damage, message", DAMAGES)
def test_a_damaged_base_model_is_one_line_not_a_traceback(tmp_path, env, damage, message):
    damaged = _damaged_model(tmp_path, damage)
    data = write_batch(tmp_path / "ok.csv", GOOD)
    res = train(tmp_path, env, "--data", str(data), "--out", str(tmp_path / "out"), "--base-model", str(damaged))
    assert res.returncode == 1
    assert message in res.stderr and "Traceback" not in res.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KB tmpfs: too small for an adapter (~0.5 MB). Skipped where mounting is not permitted."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_while_writing_the_adapter_is_one_line_naming_out_and_leaves_nothing(tmp_path, env, small_disk):
    data = write_batch(tmp_path / "ok.csv", GOOD)
    (tmp_path / "params.yaml").write_text("train:\n  min_steps: 2\n  max_steps: 2\n")
    res = train(
        tmp_path,
        env,
        "--data",
        str(data),
        "--out",
        str(small_disk / "adapter"),
        "--params",
        str(tmp_path / "params.yaml"),
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith(f"error: {small_disk / 'adapter'}: ") and "No space left on device" in res.stderr
    assert list(small_disk.iterdir()) == []  # no staging folder left behind


def test_sigterm_during_training_exits_143_and_leaves_nothing(tmp_path, env):
    import signal
    import subprocess
    import time

    from tests.conftest import TAILOR

    data = write_batch(tmp_path / "ok.csv", GOOD)
    # select: lora, or the selection would keep the probe of this small batch and finish at once
    (tmp_path / "params.yaml").write_text("train:\n  min_steps: 100000\n  max_steps: 100000\n  select: lora\n")
    proc = subprocess.Popen(
        [
            TAILOR,
            "train",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "out" / "adapter"),
            "--params",
            str(tmp_path / "params.yaml"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(12)  # past loading the model, well inside the 100,000 steps
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
