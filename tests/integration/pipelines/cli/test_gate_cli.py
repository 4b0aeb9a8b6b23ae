"""`tailor gate` (the dvc.yaml gate stage) re-judges recorded checks under the policy given now."""

import json

from pipelines.evaluation.gate import decide
from pipelines.policy import DEFAULT_POLICY, load_policy
from tests.conftest import run_cli
from tests.unit.pipelines.evaluation.test_gate import passing_checks


def _recorded(tmp_path):
    decision = decide(load_policy(), passing_checks(load_policy()), adapter="tickets:candidate", against=None)
    return decision.write_json(tmp_path / "gate_decision.json")


def _strict(tmp_path):
    strict = tmp_path / "strict.yaml"
    strict.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("max_p95_ratio: 1.5", "max_p95_ratio: 1.0"))
    return strict


def test_the_gate_passes_recorded_checks_under_the_shipped_policy_and_writes_its_decision(tmp_path):
    done = run_cli("gate", "--decision", str(_recorded(tmp_path)), "--out", str(tmp_path / "out.json"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))["passed"] is True


def test_a_stricter_policy_fails_the_same_measurements_naming_the_limit(tmp_path):
    recorded = _recorded(tmp_path)
    done = run_cli("gate", "--decision", str(recorded), "--policy", str(_strict(tmp_path)), "--json")
    assert done.returncode == 1
    decision = json.loads(done.stdout)
    assert decision["passed"] is False
    assert [f["policy_key"] for f in decision["failures"]] == ["load.max_p95_ratio"]


def test_the_configured_policy_file_is_used_when_no_option_is_given(tmp_path):
    import os

    env = {**os.environ, "TAILOR_POLICY": str(_strict(tmp_path))}
    done = run_cli("gate", "--decision", str(_recorded(tmp_path)), env=env)
    assert done.returncode == 1
    assert "load.max_p95_ratio" in done.stdout


def test_a_missing_decision_file_says_to_run_evaluate_first(tmp_path):
    done = run_cli("gate", "--decision", str(tmp_path / "nope.json"))
    assert done.returncode == 1
    assert "run `tailor evaluate` first" in done.stderr and "Traceback" not in done.stderr


def test_a_decision_file_that_is_broken_or_another_record_is_refused_by_name(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"passed": ')
    done = run_cli("gate", "--decision", str(broken))
    assert done.returncode == 2
    assert f"{broken} is not a valid GateDecision: file: Invalid JSON" in done.stderr and "Traceback" not in done.stderr
    other = tmp_path / "train_result.json"
    other.write_text('{"adapter_dir": "x"}')
    done = run_cli("gate", "--decision", str(other))
    assert done.returncode == 2
    assert "passed: Field required" in done.stderr and "adapter_dir: unknown key" in done.stderr


def test_a_policy_that_measures_differently_is_refused_rather_than_stamped_on_old_measurements(tmp_path):
    other = tmp_path / "biasbig.yaml"
    other.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("min_group_size: 10", "min_group_size: 100"))
    done = run_cli("gate", "--decision", str(_recorded(tmp_path)), "--policy", str(other))
    assert done.returncode == 1
    assert "measures differently than the checks did (bias.min_group_size 10.0 → 100)" in done.stderr
    assert "run `tailor evaluate` again" in done.stderr


def test_a_decision_that_does_not_say_how_it_was_measured_is_refused(tmp_path):
    recorded = _recorded(tmp_path)
    raw = json.loads(recorded.read_text(encoding="utf-8"))
    del raw["measured_under"]
    recorded.write_text(json.dumps(raw))
    done = run_cli("gate", "--decision", str(recorded))
    assert done.returncode == 1 and "does not record the settings its checks measured with" in done.stderr
