"""True structures of synthetic galaxies, stored as masks of the truth producer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segmentation.models import Galaxy, Image, ImportBatch
from segmentation.services.masks import MaskResult, mask_store, producer_get_or_create

TRUTH_PRODUCER = {"kind": "truth", "name": "synthetic truth", "version": "1"}


@dataclass(frozen=True)
class TruthResult:
    masks: list[MaskResult]
    galaxy_fields: list[str]  # Galaxy fields the truth changed

    @property
    def changed(self) -> bool:
        return bool(self.galaxy_fields) or any(r.status != "unchanged" for r in self.masks)


def truth_orientation(params: dict) -> dict:
    """The disk's b/a and position angle (deg east of north, [0, 180)) in a synthetic truth, as Galaxy fields;
    empty when the truth lacks them. The truth's b/a is the observed one, as catalogues give it."""
    ba, pa = params.get("axis_ratio"), params.get("position_angle_deg")
    if ba is None or pa is None:
        return {}
    return {"axis_ratio": float(ba), "position_angle": float(pa) % 180.0}


def truth_store(*, galaxy: Galaxy, image: Image, truth, batch: ImportBatch | None = None) -> TruthResult:
    """Store a synthetic galaxy's true masks on ``image`` and its true parameters on the galaxy: the truth,
    ``synthetic`` and the disk orientation (``axis_ratio``, ``position_angle``) the measurements deproject
    with. The truth sets these at every import, over any other value."""
    producer = producer_get_or_create(**TRUTH_PRODUCER, description="Known ground truth of synthetic galaxies.")
    results = []
    for structure, plane in (("spiral", truth.spiral), ("bar", truth.bar)):
        results.append(mask_store(galaxy=galaxy, image=image, structure=structure, producer=producer,
                                  state="marked", numerators=plane.astype(np.int64), denominator=1, batch=batch))
    wanted = {"truth": truth.params, "synthetic": True, **truth_orientation(truth.params)}
    changed = [name for name, value in wanted.items() if getattr(galaxy, name) != value]
    for name in changed:
        setattr(galaxy, name, wanted[name])
    if changed:
        galaxy.save(update_fields=[*changed, "updated_at"])
    return TruthResult(masks=results, galaxy_fields=changed)
