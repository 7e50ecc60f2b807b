"""Reads of model versions: their training manifest and the splits it records."""
from __future__ import annotations

from evalcore.unet.manifest import read_manifest, splits_by_galaxy
from segmentation.models import ModelVersion


def version_manifest(version: ModelVersion) -> dict:
    """The version's training manifest as a dict (``{"galaxies": [...]}``); empty when it has none."""
    if not version.manifest:
        return {"galaxies": []}
    with version.manifest.open("rb") as fh:
        return read_manifest(fh.read())


def model_version_splits(version: ModelVersion) -> dict[int, str]:
    """galaxy id -> "train" | "val" | "test" as recorded in the version's manifest (the split it really used)."""
    return splits_by_galaxy(version_manifest(version))
