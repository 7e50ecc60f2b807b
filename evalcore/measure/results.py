"""Turning result dataclasses into plain, JSON-ready dicts (no Django)."""
from __future__ import annotations

import dataclasses
import math

import numpy as np


def plain(value):
    """Dataclasses, numpy scalars/arrays, tuples -> dicts, floats, ints, lists; NaN/inf -> None (JSON has none)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def known_fields(cls, data: dict) -> dict:
    """The entries of ``data`` that are fields of dataclass ``cls``: a dict stored by another code version
    may carry fields this one does not know (they are dropped; missing ones take their defaults)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}
