"""Training children come from a fork server started early: they still run where, and with the settings
that, the process asking for them has now, not those it had when the server started."""

import json
import os
import subprocess
import sys
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


def test_a_child_of_the_warmed_server_finds_the_model_loading_imported(tmp_path):
    # In a fresh interpreter: this test process's fork server may have been started with another preload.
    code = """
import json, os, sys
from pipelines.training import job
from pipelines.training.cpu_share import run_in_share

def report(out):
    wanted = ["transformers.modeling_utils", "peft", "sklearn.linear_model", "cleanlab.filter"]
    open(out, "w").write(json.dumps([name for name in wanted if name not in sys.modules]))

if __name__ == "__main__":
    job.warm_up()
    run_in_share(report, sys.argv[1], niceness=os.getpriority(os.PRIO_PROCESS, 0), threads_setting=1)
"""
    script, out = tmp_path / "train_main.py", tmp_path / "missing.json"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == []  # preloaded, not imported again in the child


def test_a_fork_server_that_died_on_its_preload_is_named_in_the_training_error(tmp_path):
    # multiprocessing's fork server survives an ImportError in its preload, not another error: then no child
    # starts, which must say so rather than raise a bare EOFError.
    (tmp_path / "tailor_breaks_on_import.py").write_text("raise RuntimeError('torch version not accepted')\n")
    code = """
import os, sys
from pipelines.training.cpu_share import TrainingProcessError, run_in_share, start_workers

if __name__ == "__main__":
    start_workers(["tailor_breaks_on_import"])
    try:
        run_in_share(print, "never", niceness=os.getpriority(os.PRIO_PROCESS, 0), threads_setting=1)
    except TrainingProcessError as err:
        print("REFUSED", err)
"""
    script = tmp_path / "train_main.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "REFUSED no training process could be started: the fork server" in done.stdout, done.stdout
