"""The expectation suite runs beside the base model's checks (coverage, noise audit), and an error
still surfaces as it did when they ran one after the other: the suite's first."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from pipelines.batches import validate
from pipelines.batches.suite import run_suite
from pipelines.policy import load_policy
from registry.errors import ConfigError, NotFoundError

ROWS = "id,text,label\n" + "".join(f"r{i},message number {i},{'ab'[i % 2]}\n" for i in range(20))


@pytest.fixture
def batch(tmp_path) -> Path:
    path = tmp_path / "batch.csv"
    path.write_text(ROWS, encoding="utf-8")
    return path


def test_the_suite_runs_while_the_base_reads_the_batch(batch, tmp_path, monkeypatch):
    base_started = threading.Event()

    def suite(*args, **kwargs):
        # Run one after the other, the suite would wait here for a base check that had not started.
        assert base_started.wait(timeout=30), "the suite waited for the base's checks: they did not overlap"
        return run_suite(*args, **kwargs)

    def read_by_base(*args):
        base_started.set()
        return None, None, None, []

    monkeypatch.setattr(validate, "run_suite", suite)
    monkeypatch.setattr(validate, "_read_by_base", read_by_base)
    report, _ = validate.validate_batch(batch, load_policy(), base_model=tmp_path / "base")
    assert report.accepted, report.failures


def test_a_suite_error_is_the_error_even_when_the_base_fails_too(batch, tmp_path, monkeypatch):
    def suite(*args, **kwargs):
        raise ConfigError("expectation suite broken")

    def read_by_base(*args):
        raise NotFoundError("no base here")

    monkeypatch.setattr(validate, "run_suite", suite)
    monkeypatch.setattr(validate, "_read_by_base", read_by_base)
    with pytest.raises(ConfigError, match="expectation suite broken"):
        validate.validate_batch(batch, load_policy(), base_model=tmp_path / "base")


def test_a_missing_base_is_the_error_when_the_suite_passes(batch, tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        validate.validate_batch(batch, load_policy(), base_model=tmp_path / "no-base")
