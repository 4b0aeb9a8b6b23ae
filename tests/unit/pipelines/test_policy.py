"""policy.yaml loads as a typed record, and a malformed policy is refused naming the key."""

import hashlib
from pathlib import Path

import pytest

from pipelines.policy import DEFAULT_POLICY, load_policy
from registry.errors import ConfigError


def test_the_shipped_policy_loads_and_carries_the_hash_of_its_bytes():
    policy = load_policy()
    assert policy.sha256 == hashlib.sha256(DEFAULT_POLICY.read_bytes()).hexdigest()
    assert policy.promotion.four_eyes_production is True
    assert 0 < policy.quality.min_macro_f1 < 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('version: "1"\nquality:\n  min_macro_f1x: 0.5\n', "quality.min_macro_f1x: unknown key"),
        ('version: "1"\nload:\n  max_p95_ms: fast\n', "load.max_p95_ms: Input should be a valid number"),
        ('version: "1"\ncost:\n  max_money: -1\n', "cost.max_money: Input should be greater than or equal to 0"),
        ('version: "1"\nbias:\n  max_gap: 2\n', "bias.max_gap: Input should be less than or equal to 1"),
        ('version: "1"\nsurprise: {}\n', "surprise: unknown key"),
        ('version: "1"\ndrift:\n  min_rows: 1\n', "drift.min_rows: Input should be greater than or equal to 2"),
        ('version: "1"\nload:\n  max_rss_mb: -5\n', "load.max_rss_mb: Input should be greater than 0"),
        (
            'version: "1"\nquality:\n  max_regression: yes\n',
            "quality.max_regression: Value error, expected a number, got a boolean",
        ),
        (
            'version: "1"\nquality:\n  min_holdout_size: true\n',
            "quality.min_holdout_size: Value error, expected a number, got a boolean",
        ),
        ('version: "1"\nload:\n  max_p95_ms: .inf\n', "load.max_p95_ms: Input should be a finite number"),
        (
            'version: "1"\npromotion:\n  four_eyes_production: "off"\n',
            "promotion.four_eyes_production: Value error, expected true or false, got 'off'",
        ),
        ("quality: {}\n", "version: Field required"),
        ("- just\n- a list\n", "must be a mapping of sections"),
        ("version: [\n", "is not valid YAML"),
    ],
)
def test_a_malformed_policy_is_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert message in str(err.value)


def test_a_missing_policy_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("path, what", [("/dev/zero", "a device, pipe or socket"), (".", "a folder")])
def test_a_policy_path_that_is_not_a_file_is_refused_before_it_is_read(path, what):
    # /dev/zero read to its end would never return
    with pytest.raises(ConfigError, match=f"policy file {path} is {what}, not a file"):
        load_policy(Path(path))


def test_a_policy_from_before_the_load_ratios_still_loads_and_keeps_its_absolute_limit_unjudged(tmp_path, caplog):
    old = tmp_path / "old.yaml"
    old.write_text('version: "2026.11.29-3"\nload:\n  max_p95_ms: 250\n  max_rss_mb: 2048\n  max_adapter_mb: 20\n')
    with caplog.at_level("WARNING"):
        policy = load_policy(old)
    assert "load.max_p95_ms is never judged without load.reference_host" in caplog.text
    assert policy.load.max_p95_ms == 250 and policy.load.reference_host is None
    assert policy.load.max_p95_ratio == 1.5 and policy.load.max_base_spread == 3.0
