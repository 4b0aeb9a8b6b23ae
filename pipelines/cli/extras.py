"""Which optional part of Tailor (a pip extra) provides a module a command imports.

A serving host installs `tailor[serve]` and lacks Prefect, Great Expectations and the rest: a command that
needs them says which extra to install instead of failing with a traceback.
"""

from __future__ import annotations

# Top-level module → the extra that installs it (pyproject.toml, [project.optional-dependencies]).
EXTRA_OF_MODULE = {
    "fastapi": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "great_expectations": "train",
    "evidently": "train",
    "cleanlab": "train",
    "sklearn": "train",
    "scipy": "train",
    "pandas": "train",
    "pyarrow": "train",
    "dvc": "train",
    "prefect": "orchestrate",
    "onnxruntime": "serve-onnx",
    "onnx": "serve-onnx",
}


def missing_extra(err: ModuleNotFoundError) -> str | None:
    """What to install for a module that is not there, when an extra of Tailor provides it."""
    module = (err.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    return f"this command needs {module}, which the {extra!r} extra installs: pip install 'tailor[{extra}]'"
