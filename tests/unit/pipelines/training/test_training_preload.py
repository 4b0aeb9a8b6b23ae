"""The fork server's preload names modules that exist: it drops an ImportError silently, and a name that no
longer resolves would put seconds of imports back into every training child."""

import importlib.util

from pipelines.training.job import TRAINING_MODULES


def test_every_preloaded_module_resolves():
    missing = [name for name in TRAINING_MODULES if name != "__main__" and importlib.util.find_spec(name) is None]
    assert missing == []
