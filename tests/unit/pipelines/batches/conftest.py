"""Batches in a unit test live in tmp_path, which no git repository tracks."""

from __future__ import annotations

import pytest

from pipelines.batches import git_files


@pytest.fixture(autouse=True)
def untracked(monkeypatch):
    # Routing asks git whether a batch belongs to the checkout; outside a repository git answers "no", so the
    # answer is given here instead of from a git process. Git itself: tests/integration/pipelines/batches/.
    monkeypatch.setattr(git_files, "tracked_by_git", lambda path: False)
