"""A small open study over real stored galaxies, images and masks, shared by the rating tests.

``build_study`` writes everything through the real services (galaxy, image and mask stores, study
design, opening); the pictures are small synthetic two-armed spirals so screenshots look like galaxies.
The one test here checks that the builder really makes what the other tests rely on.
"""
from __future__ import annotations

import numpy as np

from ratings import services
from ratings.models import Assignment, Candidate, Item, Study
from segmentation import services as seg

SOURCES = (("volunteers", "GZ3D volunteers", "v4"), ("model", "unet-resnet18", "v3"),
           ("sparcfire", "sparcfire-py", "p1"))
SIZE = 48  # px: tiny, the panels are rendered at ratings.panels.PANEL_SIZE anyway
DENOMINATOR = 5


def spiral(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8 image, arm strength in [0, 1]) of a two-armed logarithmic spiral with a bulge."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(x, y) + 1e-6
    theta = np.arctan2(y, x) + rng.uniform(0, np.pi)
    arms = np.clip(np.cos(2 * (theta - 2.2 * np.log(r))), 0, 1) ** 3 * np.exp(-r / (size * 0.3))
    arms[r < size * 0.08] = 0
    bulge = np.exp(-(r / (size * 0.07)) ** 2)
    light = 0.9 * bulge + 0.8 * arms + rng.normal(0, 0.02, r.shape)
    rgb = np.dstack([light * 1.1, light, light * (0.9 + 0.6 * arms)])
    rgb = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return rgb, arms / max(arms.max(), 1e-6)


def source_counts(arms: np.ndarray, j: int) -> np.ndarray:
    """Vote counts out of DENOMINATOR: each source marks the arms a little differently."""
    threshold = (0.25, 0.15, 0.45)[j]
    counts = np.where(arms > threshold, np.clip(np.round(arms * DENOMINATOR + j - 1), 1, DENOMINATOR), 0)
    if j == 2:  # the arc finder finds only part of each arm
        counts[: arms.shape[0] // 3] = 0
    return counts.astype(np.int64)


def build_study(name: str = "Blind study", n_galaxies: int = 4, planned_raters: int = 3,
                raters_per_item: int = 2, practice_items: int = 1, seed: int = 1, open_it: bool = True,
                prefix: str = "rg", reference: bool = True, **fields) -> Study:
    """An (open) study comparing the three sources on ``n_galaxies`` spiral items, with ``practice_items``
    more galaxies outside the study for its practice; with ``reference`` a synthetic galaxy with a true
    mask, outside the study, for the guide's quality examples."""
    producers = [seg.producer_get_or_create(kind=k, name=n, version=v) for k, n, v in SOURCES]
    galaxies = []
    for i in range(n_galaxies):
        g, _ = seg.galaxy_upsert(name=f"{prefix}{i}", defaults={"ra": 30.0 + i, "dec": 1.0 + i / 10})
        rgb, arms = spiral(SIZE, seed * 100 + i)
        im, _ = seg.image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        for j, p in enumerate(producers):
            seg.mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                           numerators=source_counts(arms, j), denominator=DENOMINATOR)
        galaxies.append(g)
    for i in range(practice_items):  # practice comes from galaxies that are not items of the study
        g, _ = seg.galaxy_upsert(name=f"practice-{prefix}{i}", defaults={"ra": 60.0 + i, "dec": 3.0})
        rgb, arms = spiral(SIZE, seed * 100 + 50 + i)
        im, _ = seg.image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        for j, p in enumerate(producers):
            seg.mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                           numerators=source_counts(arms, j), denominator=DENOMINATOR)
    if reference:  # a synthetic galaxy outside the study whose true mask makes the guide's examples
        g, _ = seg.galaxy_upsert(name=f"{prefix}-ref", defaults={"ra": 50.0, "dec": -1.0, "synthetic": True})
        rgb, arms = spiral(SIZE, seed * 100 + 99)
        im, _ = seg.image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        truth = seg.producer_get_or_create(kind="truth", name="synthetic truth", version="1")
        seg.mask_store(galaxy=g, image=im, structure="spiral", producer=truth, state="marked",
                       numerators=(arms > 0.2).astype(np.int64), denominator=1)
    values = dict(structures=["spiral"], primary_question="Which source marks spiral arms best?",
                  planned_items=n_galaxies, planned_raters=planned_raters, raters_per_item=raters_per_item,
                  stopping_rule="every planned rating done", seed=seed, repeat_rate=0, attention_rate=0,
                  practice_items=practice_items)
    values.update(fields)
    study = Study.objects.create(name=name, **values)
    study.sources.set(producers)
    services.study_set_items(study=study, galaxies=galaxies)
    if open_it:
        services.study_open(study=study)
    return study


def test_builder_makes_an_open_three_source_study(db):
    study = build_study(n_galaxies=3, planned_raters=3, raters_per_item=2)
    assert study.state == Study.State.OPEN
    assert study.items.filter(kind=Item.Kind.REAL).count() == 3
    assert set(Candidate.objects.filter(item__study=study).values_list("producer__kind", flat=True)) == {
        "volunteers", "model", "sparcfire"}
    assert Assignment.objects.filter(study=study).count() == 3 * 2
    # the sources' masks really differ, so a rater has something to judge
    hashes = {c.mask.content_hash for c in Candidate.objects.filter(item__study=study, item__galaxy__name="rg0")}
    assert len(hashes) == 3
