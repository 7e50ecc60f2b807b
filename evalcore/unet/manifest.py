"""The training manifest of a model version: which galaxy was in which split, on which image, with which
label masks (by content hash). Written once when a version is stored, read wherever a split or a label
is needed (evaluation, the test-split selection of studies and commands, the version comparison page).

Schema (JSON)::

    {"galaxies": [{"galaxy_id": 12, "name": "NGC 1300", "split": "train" | "val" | "test",
                   "image_id": 34, "masks": {"spiral": "<sha256>" | "not asked", "bar": ...}}, ...]}
"""
from __future__ import annotations

import json
from dataclasses import dataclass

NOT_ASKED = "not asked"  # a structure the galaxy's volunteers were not asked about


@dataclass(frozen=True)
class ManifestEntry:
    galaxy_id: int
    name: str
    split: str
    image_id: int
    masks: dict[str, str]  # structure -> label mask content hash, or NOT_ASKED

    def as_dict(self) -> dict:
        return {"galaxy_id": self.galaxy_id, "name": self.name, "split": self.split, "image_id": self.image_id,
                "masks": dict(self.masks)}


def manifest_dict(entries) -> dict:
    """The manifest of these ``ManifestEntry`` rows, ready for JSON."""
    return {"galaxies": [e.as_dict() for e in entries]}


def manifest_bytes(entries) -> bytes:
    return json.dumps(manifest_dict(entries), indent=1).encode()


def read_manifest(data: bytes | str | None) -> dict:
    """A manifest file's content as a dict; ``{"galaxies": []}`` for none. Raises ValueError when it is not
    a manifest."""
    if not data:
        return {"galaxies": []}
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"the training manifest is not JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("galaxies"), list):
        raise ValueError("the training manifest has no list of galaxies")
    return manifest


def splits_by_galaxy(manifest: dict) -> dict[int, str]:
    """galaxy id -> "train" | "val" | "test" as the manifest records it."""
    return {g["galaxy_id"]: g["split"] for g in manifest.get("galaxies", [])}
