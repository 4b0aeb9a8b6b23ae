"""dvc.yaml's stages rerun when the code that decides their output changes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _deps(stage: str) -> set[str]:
    return {dep if isinstance(dep, str) else next(iter(dep)) for dep in STAGES[stage]["deps"]}


@pytest.mark.parametrize(("stage", "modules"), [
    # How the batch is decoded, whether the base reads it, how its text is escaped in the reports.
    ("validate", {"pipelines/validate.py", "pipelines/batch_io.py", "pipelines/text_encoding.py",
                  "pipelines/tokenizer_coverage.py", "pipelines/inert_text.py", "pipelines/quarantine.py"}),
    # Which blocks and layers are adapted, per encoder family.
    ("train", {"pipelines/train.py", "pipelines/model.py", "pipelines/encoder_family.py"}),
])  # fmt: skip
def test_a_stage_depends_on_the_modules_that_decide_its_output(stage, modules):
    assert modules <= _deps(stage)
    assert all((REPO / dep).exists() for dep in _deps(stage) if dep.startswith("pipelines/"))
