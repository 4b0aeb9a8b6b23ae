"""The default policy, params and expectation suite are package data with one copy: the package's files are
links to the repository's (the files dvc.yaml tracks), and every command's default resolves to them."""

from pathlib import Path

import pytest

from pipelines import defaults
from pipelines.batches.suite import SUITE_FILE
from pipelines.policy import DEFAULT_POLICY
from pipelines.training.params import TrainParams, load_params
from registry.errors import ConfigError
from tests.conftest import REPO

ROOT = REPO
PACKAGED = Path(defaults.__file__).parent


@pytest.mark.parametrize(
    ("packaged", "repository"),
    [
        ("policy.yaml", "policy.yaml"),
        ("params.yaml", "params.yaml"),
        ("expectations.yaml", "data/expectations/batch.yaml"),
    ],
)
def test_each_packaged_default_is_a_link_to_the_repository_file_dvc_tracks(packaged, repository):
    link = PACKAGED / packaged
    assert link.is_symlink(), f"{link} must link to {repository}, not copy it (two copies drift)"
    assert link.resolve() == (ROOT / repository).resolve()
    assert repository in (ROOT / "dvc.yaml").read_text(encoding="utf-8")


def test_the_commands_defaults_are_the_packaged_files():
    assert (DEFAULT_POLICY, SUITE_FILE) == (defaults.POLICY, defaults.SUITE)


def test_params_come_from_the_working_folder_first_then_the_packaged_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_params() == TrainParams()  # no ./params.yaml: the packaged one, which repeats the code defaults
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.001\n")
    assert load_params().lr == 0.001
    (tmp_path / "params.yaml").write_text("train: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"params.yaml: 'train:' holds \[1, 2\], not parameters"):
        load_params()
