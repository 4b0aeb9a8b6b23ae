"""The composition root: one Context per command or flow run, its registry's rules from the policy."""

from __future__ import annotations

import pytest

from pipelines.context import Context
from registry.errors import ConfigError


@pytest.mark.parametrize(
    ("key", "rule"), [("four_eyes_production", "four_eyes_production"), ("require_gate_decision", "require_gate")]
)
def test_the_promotion_rules_come_from_the_configured_policy(monkeypatch, tmp_path, key, rule):
    from pipelines.policy import DEFAULT_POLICY

    relaxed = tmp_path / "relaxed.yaml"
    relaxed.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace(f"{key}: true", f"{key}: false"))
    monkeypatch.setenv("TAILOR_ACCESS_KEY", "AK")
    monkeypatch.setenv("TAILOR_SECRET_KEY", "SK")
    assert getattr(Context.load().registry().rules, rule) is True
    monkeypatch.setenv("TAILOR_POLICY", str(relaxed))
    assert Context.load().policy.sha256 != Context.load().policy_or(DEFAULT_POLICY).sha256
    assert getattr(Context.load().registry().rules, rule) is False
    monkeypatch.setenv("TAILOR_POLICY", str(DEFAULT_POLICY))  # as `--policy` configures a process
    assert getattr(Context.load().registry().rules, rule) is True


def test_a_configured_policy_file_that_is_malformed_is_refused_naming_the_key(monkeypatch, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text('version: "1"\npromotion:\n  four_eyes: false\n')
    monkeypatch.setenv("TAILOR_POLICY", str(bad))
    with pytest.raises(ConfigError, match="promotion.four_eyes: unknown key"):
        Context.load().policy


def test_a_snapshot_keeps_the_policy_it_started_with_while_the_file_changes(monkeypatch, tmp_path):
    from pipelines.policy import DEFAULT_POLICY

    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY.read_text(encoding="utf-8"))
    monkeypatch.setenv("TAILOR_POLICY", str(policy))
    monkeypatch.setenv("TAILOR_ACCESS_KEY", "AK")
    monkeypatch.setenv("TAILOR_SECRET_KEY", "SK")
    run = Context.snapshot()
    started = run.policy.sha256
    policy.write_text(
        DEFAULT_POLICY.read_text(encoding="utf-8").replace("four_eyes_production: true", "four_eyes_production: false")
    )
    assert run.policy.sha256 == started
    assert run.registry().rules.four_eyes_production is True  # the rule the run started under
    assert run.registry().rules.policy_sha256 == started
    assert Context.load().policy.sha256 != started  # a new command reads the file as it is now


def test_a_snapshot_refuses_a_malformed_policy_before_the_run_does_anything(monkeypatch, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: [\n")
    monkeypatch.setenv("TAILOR_POLICY", str(bad))
    with pytest.raises(ConfigError, match="not valid YAML"):
        Context.snapshot()
    Context.load()  # a command that never reads the policy is not refused for it
