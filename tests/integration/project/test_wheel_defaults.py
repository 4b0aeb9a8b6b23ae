"""A built wheel carries the default policy, params and expectation suite, and a command run from a folder
with no policy.yaml, no params.yaml and no TAILOR_POLICY uses them: Tailor runs without a checkout."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.wheel_build import build_wheel

DEFAULTS = {
    "pipelines/defaults/policy.yaml": REPO / "policy.yaml",
    "pipelines/defaults/params.yaml": REPO / "params.yaml",
    "pipelines/defaults/expectations.yaml": REPO / "data" / "expectations" / "batch.yaml",
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from the checkout, unpacked as pip would into site-packages (dependencies: this venv's)."""
    wheel = build_wheel(tmp_path_factory.mktemp("dist"))
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        for name, source in DEFAULTS.items():
            assert archive.read(name) == source.read_bytes(), name
        archive.extractall(site)
    return site


def test_a_command_outside_a_checkout_uses_the_packaged_defaults(installed, tmp_path):
    batch = tmp_path / "batch.csv"
    batch.write_text("text,label\n" + "".join(f"message number {i},{'ab'[i % 2]}\n" for i in range(20)))
    env = {k: v for k, v in os.environ.items() if k not in ("TAILOR_POLICY", "TAILOR_CONFIG")}
    env.update(PYTHONPATH=str(installed), TAILOR_HOME=str(tmp_path / "home"))
    probe = (
        "import json, sys; from pipelines.policy import load_policy; from pipelines.batches.suite import SUITE_FILE;"
        " from pipelines.training.params import TrainParams, load_params;"
        " print(json.dumps([str(load_policy().source), str(SUITE_FILE), load_params() == TrainParams()]))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    policy, suite, params_are_the_defaults = json.loads(done.stdout)
    assert Path(policy) == installed / "pipelines" / "defaults" / "policy.yaml"
    assert Path(suite) == installed / "pipelines" / "defaults" / "expectations.yaml"
    assert params_are_the_defaults

    validate = [sys.executable, "-m", "pipelines.cli.main", "validate", str(batch), "--no-noise-audit", "--no-track"]
    done = subprocess.run([*validate, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accepted"] is True
