"""The automated mask sources that generation runs can use: the model and the arc finder.

A source knows its Producer (what provenance its masks carry) and, once loaded for a run, turns a batch
of Images into masks. Loading happens once per chunk (weights, parameters), generation per batch.
Adding a source = a module with a ``Source`` class, named in ``_SOURCES``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from evalcore.vocabulary import STRUCTURES  # noqa: F401 - the structures a source makes masks of


@dataclass
class MaskOutput:
    state: str  # "marked" | "empty" | "not_asked"
    numerators: np.ndarray | None
    denominator: int
    details: dict = field(default_factory=dict)


# name -> module defining ``Source``; imported only when used (the model source imports torch).
_SOURCES = {"model": "segmentation.services.sources.model", "sparcfire": "segmentation.services.sources.arcfinder"}


def get_source(name: str):
    import importlib

    if name not in _SOURCES:
        raise ValueError(f"unknown mask source {name!r}; known: {', '.join(sorted(_SOURCES))}")
    return importlib.import_module(_SOURCES[name]).Source
