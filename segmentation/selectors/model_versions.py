"""Reads of model versions: the splits their manifests record."""
from __future__ import annotations

import json

from segmentation.models import ModelVersion


def model_version_splits(version: ModelVersion) -> dict[int, str]:
    """galaxy id -> "train" | "val" | "test" as recorded in the version's manifest (the split it really used)."""
    if not version.manifest:
        return {}
    with version.manifest.open("rb") as fh:
        data = json.loads(fh.read())
    return {g["galaxy_id"]: g["split"] for g in data.get("galaxies", [])}
