"""dvc.yaml's stages rerun when the code that decides their output changes."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _deps(stage: str) -> set[str]:
    return {dep if isinstance(dep, str) else next(iter(dep)) for dep in STAGES[stage]["deps"]}


@pytest.mark.parametrize(
    ("stage", "modules"),
    [
        # How the batch is decoded, whether the base reads it, how its text is escaped in the reports.
        (
            "validate",
            {
                "pipelines/batches/validate.py",
                "pipelines/batches/read.py",
                "pipelines/batches/text_encoding.py",
                "pipelines/batches/tokenizer_coverage.py",
                "pipelines/batches/inert_text.py",
                "pipelines/batches/quarantine.py",
                "pipelines/batches/route.py",
                "serving/encoder.py",
                "serving/embeddings.py",
                "pipelines/policy.py",
            },
        ),
        # Which blocks and layers are adapted, per encoder family.
        (
            "train",
            {
                "pipelines/training/recipe.py",
                "pipelines/training/objective.py",
                "serving/model.py",
                "serving/encoder_family.py",
            },
        ),
        # Every check and the gate that turns them into the decision file.
        (
            "evaluate",
            {"pipelines/evaluation/checks/quality.py", "pipelines/evaluation/gate.py", "serving/embeddings.py"},
        ),
    ],
)
def test_a_stage_depends_on_the_modules_that_decide_its_output(stage, modules):
    # A stage depends on a module itself or on the stage folder holding it.
    assert {m for m in modules if not any(m == dep or m.startswith(dep + "/") for dep in _deps(stage))} == set()
    assert all((REPO / m).is_file() for m in modules)
    assert all((REPO / dep).exists() for dep in _deps(stage) if dep.startswith("pipelines/"))
