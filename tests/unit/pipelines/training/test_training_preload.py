"""The fork server's preload names modules that exist (a name that no longer resolves would put seconds of
imports back into every training child), and a module that fails to import does not stop the others."""

import importlib.util

from pipelines.training.preload import TRAINING_MODULES, import_all


def test_every_preloaded_module_resolves():
    assert [name for name in TRAINING_MODULES if importlib.util.find_spec(name) is None] == []


def test_a_module_that_raises_on_import_is_reported_and_the_rest_imported(tmp_path, monkeypatch):
    (tmp_path / "tailor_breaks_on_import.py").write_text("raise RuntimeError('torch version not accepted')\n")
    monkeypatch.syspath_prepend(tmp_path)
    failed = import_all(["tailor_breaks_on_import", "json", "tailor_no_such_module"])
    assert failed[0] == "tailor_breaks_on_import: RuntimeError: torch version not accepted"
    assert failed[1].startswith("tailor_no_such_module: ModuleNotFoundError") and len(failed) == 2
