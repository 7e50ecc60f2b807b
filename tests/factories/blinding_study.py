"""A three-source study with both structures whose masks carry the traits that gave sources away: the
volunteers' maps in steps of 1/N, the model's soft map with a faint wash over the whole frame (its level
stored with its evaluation), and the arc finder's flat, hard-edged arcs (it is never asked about bars).

Everything is written through the real services; the galaxies are the small synthetic spirals of
``tests.factories.studies``."""
from __future__ import annotations

import numpy as np

from ratings.models import Study
from ratings.services.studies import study_open, study_set_items
from segmentation.models import ModelVersion
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from tests.factories.studies import PICTURE_SIZE as SIZE
from tests.factories.studies import spiral

N_VOLUNTEERS = 7
MODEL_LEVELS = {"spiral": 0.35, "bar": 0.4}


def bar_strength(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    angle = rng.uniform(0, np.pi)
    along = x * np.cos(angle) + y * np.sin(angle)
    across = -x * np.sin(angle) + y * np.cos(angle)
    half = rng.uniform(0.12, 0.22) * SIZE
    return np.clip(1 - np.abs(along) / half, 0, 1) * np.exp(-(across / (0.05 * SIZE)) ** 2)


def source_maps(arms: np.ndarray, rng: np.random.Generator) -> dict[str, tuple[np.ndarray, int]]:
    """kind -> (numerators, denominator) for one structure's strength map."""
    vols = np.round(np.clip(arms * 1.3 + rng.normal(0, 0.06, arms.shape), 0, 1) * N_VOLUNTEERS)
    model = np.round(np.clip(0.03 + 0.9 * arms + rng.normal(0, 0.02, arms.shape), 0.02, 1) * 255)
    arcs = (arms > 0.45).astype(np.int64)
    return {"volunteers": (vols.astype(np.int64), N_VOLUNTEERS), "model": (model.astype(np.int64), 255),
            "sparcfire": (arcs, 1)}


def build_blinding_study(n_galaxies: int = 40, *, name: str = "Blinding audit study", open_it: bool = True,
                         prefix: str = "ba", **fields) -> Study:
    vols = producer_get_or_create(kind="volunteers", name="GZ3D volunteers", version="v4")
    model = producer_get_or_create(kind="model", name="unet-resnet18", version="ba1")
    arcs = producer_get_or_create(kind="sparcfire", name="sparcfire-py", version="p1")
    ModelVersion.objects.get_or_create(producer=model, defaults=dict(
        name="unet-ba1", config={}, weights="models/none.pt", weights_sha256="0" * 64,
        metrics={"evaluation": {"structures": {
            s: {"iou_vs_volunteer_consensus": {"model_threshold_from_val": t}} for s, t in MODEL_LEVELS.items()}}}))
    producers = {"volunteers": vols, "model": model, "sparcfire": arcs}
    galaxies = []
    for i in range(n_galaxies):
        g, _ = galaxy_upsert(name=f"{prefix}{i}", defaults={"ra": 100.0 + i, "dec": 2.0 + i / 10})
        rgb, arms = spiral(SIZE, 500 + i)
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        rng = np.random.default_rng(900 + i)
        for structure, strength in (("spiral", arms), ("bar", bar_strength(700 + i))):
            for kind, (num, den) in source_maps(strength, rng).items():
                if kind == "sparcfire" and structure == "bar":
                    mask_store(galaxy=g, image=im, structure="bar", producer=arcs, state="not_asked")
                    continue
                if kind == "sparcfire" and i % 5 == 0:
                    num = np.zeros_like(num)  # the arc finder found nothing here
                state = "marked" if num.any() else "empty"
                mask_store(galaxy=g, image=im, structure=structure, producer=producers[kind], state=state,
                               numerators=num, denominator=den)
        galaxies.append(g)
    values = dict(structures=["spiral", "bar"], primary_question="Which source marks the structures best?",
                  planned_items=2 * n_galaxies, planned_raters=3, raters_per_item=1, stopping_rule="all done",
                  seed=3, repeat_rate=0, attention_rate=0, practice_items=0)
    values.update(fields)
    study = Study.objects.create(name=name, **values)
    study.sources.set(producers.values())
    study_set_items(study=study, galaxies=galaxies)
    if open_it:
        study_open(study=study)
    return study
