"""Training parameters: the shipped params.yaml loads, bad values are named, steps follow the data."""

from __future__ import annotations

import pytest

from pipelines.training.params import TrainParams, load_params
from registry.errors import ConfigError, NotFoundError
from tests.conftest import REPO


def test_the_shipped_params_yaml_loads_and_equals_the_code_defaults():
    # The YAML documents the defaults; if they drift apart, a DVC run trains something else than `tailor train`.
    assert load_params(REPO / "params.yaml") == TrainParams()


def _refused(tmp_path, text: str) -> str:
    """The message load_params refuses a params file of ``text`` with."""
    f = tmp_path / "params.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_params(f)
    return str(err.value)


def test_an_unknown_key_is_refused_by_name(tmp_path):
    assert "lora_rank: unknown key" in _refused(tmp_path, "train:\n  lora_rank: 8\n")


def test_an_out_of_range_value_is_refused_by_name(tmp_path):
    message = _refused(tmp_path, "train:\n  lr: -1\n  noise_filter: magic\n")
    assert "lr:" in message and "noise_filter:" in message


@pytest.mark.parametrize(
    "line, message",
    [
        ("lora_r: yes", "lora_r: Value error, expected a number, got a boolean"),
        ("epochs: .inf", "epochs: Input should be a finite number"),
        ("lora_targets: ['']", "lora_targets.0: String should have at least 1 character"),
        ("contrastive_batch_size: 1", "contrastive_batch_size: Input should be greater than or equal to 2"),
        ("contrastive: maybe", "contrastive: Value error, expected true or false, got 'maybe'"),
        ("select: contrastiv", "select: Input should be 'auto', 'lora', 'probe' or 'contrastive'"),
    ],
)
def test_a_yaml_boolean_an_infinity_or_an_empty_target_is_refused_by_name(tmp_path, line, message):
    assert message in _refused(tmp_path, f"train:\n  {line}\n")


def test_a_number_yaml_reads_as_text_still_parses(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  lr: 1e-3\n")  # YAML 1.1 reads 1e-3 (no dot) as a string
    assert load_params(f).lr == 1e-3


@pytest.mark.parametrize("content", [b"train: [unclosed\n", b"train:\n  lr: 1e-3 # r\xe9glage\n"])
def test_a_params_file_that_is_not_utf8_yaml_is_named(tmp_path, content):
    f = tmp_path / "params.yaml"
    f.write_bytes(content)
    with pytest.raises(ConfigError, match=f"{f} is not valid YAML"):
        load_params(f)


@pytest.mark.parametrize(
    "text, message",
    [
        # the mistake a user makes first: the keys of the section without the section
        ("contrastive: true\nlr: 0.01\n", "outside the 'train:' section, where nothing reads them: contrastive, lr;"),
        (
            "train:\n  lr: 0.01\ncontrastive: true\n",
            "outside the 'train:' section, where nothing reads them: contrastive;",
        ),
        ("train:\nlr: 0.01\n", "outside the 'train:' section, where nothing reads them: lr;"),  # the indent lost
        ("", "no 'train:' section"),
        ("train: 0.01\n", "'train:' holds 0.01, not parameters; write each as 'name: value'"),
        ("train: [lr, 0.01]\n", "'train:' holds ['lr', 0.01], not parameters;"),
        ("train: 0\n", "'train:' holds 0, not parameters;"),  # falsy values are no empty section either
        ("train: []\n", "'train:' holds [], not parameters;"),
        ("evaluate:\n  threshold: 1\n", "no 'train:' section"),
    ],
)
def test_a_params_file_whose_parameters_training_would_not_read_is_refused(tmp_path, text, message):
    assert message in _refused(tmp_path, text)


def test_a_working_params_file_of_other_sections_leaves_training_on_its_defaults(tmp_path, monkeypatch):
    # ./params.yaml is read unasked, and a DVC project's may hold only its own stages' sections
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("evaluate:\n  threshold: 1\n")
    assert load_params() == TrainParams()


def test_an_empty_train_section_means_the_defaults(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  # lr: 0.01\n")
    assert load_params(f) == TrainParams()


def test_a_missing_params_file_is_named(tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")


def test_overrides_win_over_the_file_and_none_means_keep(tmp_path):
    f = tmp_path / "params.yaml"
    f.write_text("train:\n  noise_filter: cleanlab\n")
    assert load_params(f, noise_filter="none").noise_filter == "none"
    assert load_params(f, noise_filter=None).noise_filter == "cleanlab"


def test_steps_come_from_epochs_but_never_leave_the_floor_and_ceiling():
    p = TrainParams(epochs=8, batch_size=16, min_steps=60, max_steps=600)
    assert p.steps_for(40) == 60  # tiny data still gets enough updates
    assert p.steps_for(616) == 308
    assert p.steps_for(100_000) == 600


def test_min_steps_above_max_steps_is_refused():
    with pytest.raises(ValueError, match="min_steps"):
        TrainParams(min_steps=10, max_steps=5)
