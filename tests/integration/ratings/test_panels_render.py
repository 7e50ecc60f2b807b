"""Rendering a study's panels ahead of time reads each mask and each galaxy image once, and draws the same
pictures as rendering one panel on demand."""
from __future__ import annotations

import pytest

from ratings.models import Candidate, PanelImage
from ratings.services import panels
from segmentation.models import Mask
from tests.factories.studies import spiral_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def decodes(monkeypatch):
    """Count the real decodes of mask fractions and image pixels (the real functions still run)."""
    counts = {"mask": 0, "image": 0}
    fractions, image_rgb = Mask.fractions, panels.image_rgb

    def counted_fractions(self):
        counts["mask"] += 1
        return fractions(self)

    def counted_image_rgb(image):
        counts["image"] += 1
        return image_rgb(image)

    monkeypatch.setattr(Mask, "fractions", counted_fractions)
    monkeypatch.setattr(panels, "image_rgb", counted_image_rgb)
    return counts


def test_render_study_decodes_each_mask_and_image_once(decodes):
    study = spiral_study(name="Render once", n_galaxies=3, practice_items=1)
    cands = list(Candidate.objects.filter(item__study=study).select_related("mask", "item__study"))
    marked = sum(1 for c in cands if c.mask.state == Mask.State.MARKED)
    items = {c.item_id for c in cands}
    assert marked >= 9 and len(items) >= 3

    stored = panels.render_study(study)

    assert stored == len(cands) * len(panels.MASK_VARIANTS) + len(items) * len(panels.IMAGE_VARIANTS)
    assert decodes == {"mask": marked, "image": len(items)}
    assert PanelImage.objects.filter(candidate__item__study=study).count() == stored

    # a second pass finds every picture stored and decodes nothing
    decodes.update(mask=0, image=0)
    assert panels.render_study(study) == stored
    assert decodes == {"mask": 0, "image": 0}

    # the pictures are those a panel rendered on its own shows
    for c in cands[:4]:
        for variant in panels.MASK_VARIANTS:
            with PanelImage.objects.get(candidate=c, variant=variant).file.open("rb") as fh:
                assert fh.read() == panels.render_mask_panel(c, variant)
    first = panels.image_candidate([c for c in cands if c.item_id == cands[0].item_id])
    for variant in panels.IMAGE_VARIANTS:
        with PanelImage.objects.get(candidate=first, variant=variant).file.open("rb") as fh:
            assert fh.read() == panels.plain_png(panels.image_pixels(first.mask.image, variant))
