"""The import contracts in .importlinter hold: registry is the bottom layer, serving stays light."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

LINT = Path(sys.executable).parent / "lint-imports"


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--config", str(REPO / ".importlinter"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_project_keeps_its_import_contracts():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_registry_module_that_imports_upward_breaks_them(tmp_path):
    """The contracts can fail: a copy of the packages where registry imports serving and torch."""
    for package in ("pipelines", "registry", "serving"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "registry" / "upward.py").write_text("import torch\n\nfrom serving import app\n")
    (tmp_path / "serving" / "heavy.py").write_text("from pipelines.orchestration import flows\n")
    (tmp_path / "pipelines" / "batches" / "upward.py").write_text("from pipelines.usecases import promotion\n")
    result = lint(tmp_path)
    assert result.returncode == 1
    assert "registry.upward -> torch" in result.stdout and "registry.upward -> serving.app" in result.stdout
    assert "serving.heavy -> pipelines.orchestration.flows" in result.stdout and "BROKEN" in result.stdout
    assert "pipelines.batches.upward -> pipelines.usecases.promotion" in result.stdout
