"""Config files read strictly: a key given twice is refused in every file Tailor reads as YAML."""

from __future__ import annotations

import pytest
import yaml

from pipelines.policy import load_policy
from pipelines.training.params import load_params
from pipelines.typed_files import one_line, safe_load
from registry.errors import ConfigError
from tests.conftest import REPO


def test_a_repeated_key_is_named_with_both_its_lines_and_a_merge_key_may_still_be_overridden():
    with pytest.raises(yaml.YAMLError) as err:
        safe_load("q:\n  n: 1\n  m: 2\n  m: 3\n")
    assert one_line(err.value) == "key 'm' first given at line 3, column 3, found it a second time at line 4, column 3"
    assert safe_load("base: &b {x: 1, y: 1}\nd:\n  <<: *b\n  x: 2\n")["d"] == {"x": 2, "y": 1}


def test_a_policy_setting_a_limit_twice_is_refused(tmp_path):
    text = (
        (REPO / "policy.yaml")
        .read_text(encoding="utf-8")
        .replace("min_macro_f1:", "min_macro_f1: 0.1\n  min_macro_f1:", 1)
    )
    (tmp_path / "policy.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(tmp_path / "policy.yaml")
    assert "key 'min_macro_f1' first given at line" in str(err.value) and "\n" not in str(err.value)


def test_a_params_file_setting_a_parameter_twice_is_refused(tmp_path):
    (tmp_path / "params.yaml").write_text("train:\n  lr: 0.001\n  lr: 0.01\n")
    with pytest.raises(
        ConfigError, match="key 'lr' first given at line 2, column 3, found it a second time at line 3, column 3$"
    ):
        load_params(tmp_path / "params.yaml")
