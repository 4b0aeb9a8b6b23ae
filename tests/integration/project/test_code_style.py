"""One formatter and one linter, configured in pyproject.toml, hold for the whole tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

RUFF = Path(sys.executable).parent / "ruff"


def ruff(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_tree_is_formatted():
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_tree_passes_the_linter():
    result = ruff("check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_catches_an_unused_import_a_file_read_in_the_locale_encoding_and_the_formatter_a_long_line(
    tmp_path,
):
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "bad.py").write_text(
        "import os\n\nx = [" + ", ".join(["1"] * 60) + "]\ny = open('notes.txt').read()\n", encoding="utf-8"
    )
    found = json.loads(ruff("check", "--output-format", "json", ".", cwd=tmp_path).stdout)
    assert {f["code"] for f in found} == {"F401", "PLW1514"}
    assert ruff("format", "--check", ".", cwd=tmp_path).returncode == 1
