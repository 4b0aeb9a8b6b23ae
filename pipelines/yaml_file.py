"""YAML read strictly: a key given twice in one mapping is an error, not a silent "last one wins".

A policy or params file that sets ``min_macro_f1`` twice is ambiguous about what governs promotion;
PyYAML keeps the later value without a word.
"""

from __future__ import annotations

from typing import Any

import yaml


class _StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *base": a merged key may be overridden, as YAML intends
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key: PyYAML's own construction reports it
            continue
        if repeated:
            raise yaml.constructor.ConstructorError("while reading a mapping", node.start_mark,
                                                    f"found key {key!r} a second time", key_node.start_mark)  # fmt: skip
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def safe_load(text: str | bytes) -> Any:
    """``yaml.safe_load``, refusing a repeated key.

    Raises:
        yaml.YAMLError: invalid YAML, or a key repeated in one mapping (line and column named).
    """
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
