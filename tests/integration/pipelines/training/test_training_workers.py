"""Training children come from a fork server started early: they still run where, and with the settings
that, the process asking for them has now, not those it had when the server started."""

import json
import os
from pathlib import Path

from pipelines.training.cpu_share import run_in_share, start_workers


def report_surroundings(out: str) -> None:
    """Run in the training child: its folder and one setting."""
    Path(out).write_text(
        json.dumps({"cwd": os.getcwd(), "setting": os.environ.get("TAILOR_TEST_SETTING")}), encoding="utf-8"
    )


def test_a_child_runs_in_the_current_folder_with_the_current_environment(tmp_path, monkeypatch):
    start_workers(["json"])  # the server starts here, in this folder, without the setting
    later = tmp_path / "later"
    later.mkdir()
    monkeypatch.chdir(later)
    monkeypatch.setenv("TAILOR_TEST_SETTING", "set after the server started")
    run_in_share(report_surroundings, "seen.json", niceness=os.getpriority(os.PRIO_PROCESS, 0), threads_setting=1)
    seen = json.loads(
        (later / "seen.json").read_text(encoding="utf-8")
    )  # a relative path, written in the current folder
    assert seen == {"cwd": str(later), "setting": "set after the server started"}
