"""registry/ and its unit tests on Python 3.12 and 3.13, in the environments `make setup` builds.

Only the torch-free layer: PyPI's torch 2.13.0 for these interpreters is a CUDA build that does not import
without GBs of nvidia-* libraries (docs/getting-started/install.md, "Python versions"). Deprecation warnings
are errors there, so what a newer Python deprecates (datetime.utcnow since 3.12) fails here before it is removed.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_registry_unit_tests_pass(version: str) -> None:
    venv = REPO / f".venv-py{version}"
    if (venv / "ABSENT").is_file():
        pytest.skip(f"Python {version}: {(venv / 'ABSENT').read_text(encoding='utf-8').strip()}")
    python = venv / "bin" / "python"
    assert python.is_file(), f"{venv.name} is missing: run `make setup` (infra/install.sh builds it)"
    version_line = subprocess.run([str(python), "--version"], capture_output=True, text=True, check=True).stdout
    assert version_line.startswith(f"Python {version}."), f"{venv.name} runs {version_line}"
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "--tb=short", "-p", "no:cacheprovider", "-W", "error::DeprecationWarning"]
        + ["tests/unit/registry"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode != 0:
        pytest.fail(f"registry's unit tests on Python {version}:\n{run.stdout[-6000:]}\n{run.stderr[-3000:]}")
