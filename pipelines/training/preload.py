"""Imported once by the training fork server (``pipelines.training.job.warm_up``): what every training child
needs, imported before the server forks them.

Imported here one at a time, not as the server's own preload list: multiprocessing's fork server skips a
preloaded module that raises ImportError but dies on any other error (transformers' lazy modules raise
RuntimeError on a torch version they do not accept), and every training child after that fails to start
with a bare EOFError. A module that fails here is imported again by the child that needs it, which reports
the error as the training's.
"""

from __future__ import annotations

import importlib

# Beside ``job._train``'s own modules, what they import only when called: transformers' model loading
# (``load_base``: 2-5 s, most of a child's overhead before these were preloaded; each family's own module,
# tens of milliseconds, is left to the child), peft and the noise filter's scikit-learn and cleanlab.
TRAINING_MODULES = (
    "pipelines.batches.read",
    "pipelines.training.params",
    "pipelines.training.recipe",
    "serving.model",
    "transformers.modeling_utils",
    "transformers.models.auto.modeling_auto",
    "peft",
    "sklearn.linear_model",
    "cleanlab.filter",
)


def import_all(names: tuple[str, ...] | list[str]) -> list[str]:
    """Import each of ``names``; those that failed, as ``name: error``."""
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - left to the child that needs it, which reports it
            failed.append(f"{name}: {type(err).__name__}: {err}")
    return failed


FAILED = import_all(TRAINING_MODULES)
