"""Serving stays light: a fresh interpreter that imports the predictor, or the command that runs it, loads none
of the orchestration or data-check libraries."""

import subprocess
import sys


def _heavy_modules_after(imports: str) -> list[str]:
    code = (
        f"import sys, {imports}\n"
        "print(','.join(m for m in ('prefect', 'great_expectations', 'evidently', 'dvc') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_the_predictor_imports_no_orchestration_or_data_check_library():
    assert _heavy_modules_after("serving.app, serving.follower, serving.model") == []


def test_the_tailor_command_that_runs_serve_imports_none_of_them_either():
    assert _heavy_modules_after("pipelines.cli.main, pipelines.cli.serve") == []
