"""Argument types for the benchmarks: a bad value is one argparse error naming it, before any work
starts, not a traceback from a worker process half an hour in (or a pool that respawns forever)."""

from __future__ import annotations

import argparse
from pathlib import Path


def at_least(low: int):
    """A whole number ``>= low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def counts(text: str) -> list[int]:
    """Comma-separated whole numbers, each at least 2 (``100,1000,10000``)."""
    return [at_least(2)(part) for part in text.split(",")]


def _number(text: str, allowed, rule: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not allowed(value):
        raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
    return value


def fraction(text: str) -> float:
    """A share in [0, 1)."""
    return _number(text, lambda v: 0 <= v < 1, "at least 0 and below 1")


def positive(text: str) -> float:
    return _number(text, lambda v: v > 0, "above 0")


def key_value(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return text


def banking77_folder(text: str) -> Path:
    """A folder holding Banking77's ``train.csv`` and ``test.csv``."""
    folder = Path(text)
    missing = [name for name in ("train.csv", "test.csv") if not (folder / name).is_file()]
    if missing:
        raise argparse.ArgumentTypeError(f"{folder} lacks {' and '.join(missing)} (Banking77's splits)")
    return folder
