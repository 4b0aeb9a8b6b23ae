"""Files read into typed records: strict YAML, JSON this project wrote, and pydantic's problems in one line.

YAML is read strictly: a key given twice in one mapping is an error, not a silent "last one wins".
A policy or params file that sets ``min_macro_f1`` twice is ambiguous about what governs promotion;
PyYAML keeps the later value without a word.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from registry.errors import ConfigError
from registry.files import require_file


def validation_problems(err: ValidationError, root: str = "") -> str:
    """Every problem pydantic found, each as ``dotted.key: message``, so a user can find the key.

    ``root`` names a problem with the whole document rather than one key.
    """
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or root}: {'unknown key' if e['type'] == 'extra_forbidden' else e['msg']}"
        for e in err.errors()
    )


def read_model_json(model: type[BaseModel], path: Path):
    """The ``model`` held by a JSON file this project wrote.

    Raises:
        ConfigError: the file is not UTF-8 JSON or does not hold a ``model`` (every problem named).
    """
    try:
        return model.model_validate_json(Path(path).read_bytes())  # bytes: bad UTF-8 is a ValidationError too
    except ValidationError as err:
        raise ConfigError(f"{path} is not a valid {model.__name__}: {validation_problems(err, root='file')}") from None


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *base": a merged key may be overridden, as YAML intends
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: PyYAML's own construction reports it
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                f"key {first.value!r} first given", first.start_mark, "found it a second time", key_node.start_mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def safe_load(text: str | bytes) -> Any:
    """``yaml.safe_load``, refusing a repeated key.

    Raises:
        yaml.YAMLError: invalid YAML, or a key repeated in one mapping (line and column named).
    """
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def read_sections(path: Path, what: str) -> tuple[bytes, dict]:
    """A YAML file of sections (``what``: "policy file"), as its bytes and its mapping.

    Raises:
        ConfigError: the file is missing, not YAML, or not a mapping.
    """
    raw = require_file(path, what, ConfigError).read_bytes()
    try:
        doc = safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(f"{what} {path} is not valid YAML: {one_line(err)}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{what} {path} must be a mapping of sections, got {type(doc).__name__}")
    return raw, doc


def one_line(err: Exception) -> str:
    """A YAML (or decoding) error in one line: PyYAML's spans several, quoting the text around it."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return " ".join(str(err).split())

    def at(mark) -> str:
        return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""

    parts = [
        f"{text}{at(mark)}" for text, mark in ((err.context, err.context_mark), (err.problem, err.problem_mark)) if text
    ]
    return ", ".join(parts) or type(err).__name__


class YamlRecord(BaseModel):
    """A record read from YAML, where ``yes``, ``on`` and ``true`` are booleans and ``.inf`` a float.

    Pydantic alone takes ``true`` as 1 for a number and ``"off"`` as false for a flag: ``max_regression:
    yes`` read as 1.0 passed any regression. A flag must be a YAML boolean, a number must not be one,
    and no limit may be infinite or NaN. Numbers written as text (``1e-3``, which YAML 1.1 reads as a
    string) still parse.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yaml_surprises(cls, value: Any, info: ValidationInfo) -> Any:
        annotation = cls.model_fields[info.field_name].annotation
        if annotation is bool and not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        if annotation in (int, float) and isinstance(value, bool):
            raise ValueError("expected a number, got a boolean (YAML reads yes, no, on and off as booleans)")
        return value
