"""The automated mask sources that generation runs can use: the model and the arc finder.

A source knows its Producer (what provenance its masks carry) and, once loaded for a run, turns a batch
of Images into masks. Loading happens once per chunk (weights, parameters), generation per batch.
Adding a source = adding a class here and registering it in ``SOURCES``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STRUCTURES = ("spiral", "bar")


@dataclass
class MaskOutput:
    state: str  # "marked" | "empty" | "not_asked"
    numerators: np.ndarray | None
    denominator: int
    details: dict = field(default_factory=dict)


_SOURCES: dict[str, type] = {}


def register(name: str):
    def wrap(cls):
        _SOURCES[name] = cls
        return cls

    return wrap


def get_source(name: str):
    # The classes live next to the science they wrap; importing them registers them.
    from segmentation import source_arcfinder, source_model  # noqa: F401

    try:
        return _SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown mask source {name!r}; known: {', '.join(sorted(_SOURCES))}") from None
