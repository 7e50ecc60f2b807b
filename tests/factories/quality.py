"""A toy synthetic survey for evaluating and gating model versions: galaxies with the crowd's masks and the
true masks, tiny model versions trained once per test session, and arc-finder masks of chosen quality."""
from __future__ import annotations

import functools

import numpy as np

from evalcore.sky.splits import split_for
from segmentation.models import Image, ModelVersion, Producer
from segmentation.services import training
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from segmentation.services.truth import TRUTH_PRODUCER

SIZE = 40


def galaxy_maps(i: int):
    """RGB image, true spiral and bar planes (bool) and the crowd's spiral/bar fractions of toy galaxy i."""
    rng = np.random.default_rng(i)
    y, x = np.mgrid[:SIZE, :SIZE] - SIZE / 2
    r, th = np.hypot(x, y), np.arctan2(y, x)
    arm = (np.abs(np.sin(th - np.log(r + 1) * 2)) < 0.35) & (r < SIZE / 2.2) & (r > 3)
    barred = i % 2 == 0
    bar = (np.abs(y) < 2) & (np.abs(x) < 7) if barred else np.zeros_like(arm)
    img = np.exp(-r / 8) * 180 + arm * 70 + bar * 60 + rng.normal(0, 5, r.shape)
    rgb = np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    # the crowd: 15 volunteers who each miss parts and spill over the edges
    spill = (~arm & (r < SIZE / 2.2)) * rng.integers(0, 4, arm.shape)
    spiral_votes = np.clip(arm * rng.integers(6, 15, arm.shape) + spill, 0, 15)
    bar_votes = bar * rng.integers(5, 15, bar.shape)
    return rgb, arm, bar, spiral_votes, bar_votes


def quality_survey():
    """24 toy synthetic galaxies with an image, the crowd's spiral and bar masks (15 volunteers) and the true
    masks, spread over the sky so that every split has some; returns the crowd's producer."""
    crowd = producer_get_or_create(kind="volunteers", name="GZ3D", version="test")
    truth = producer_get_or_create(**TRUTH_PRODUCER)
    splits = []
    for i in range(N_GALAXIES):
        ra, dec = _position(i)
        g, _ = galaxy_upsert(name=f"q{i}", defaults={"ra": ra, "dec": dec, "synthetic": True})
        rgb, arm, bar, sv, bv = galaxy_maps(i)
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        mask_store(galaxy=g, image=im, structure="spiral", producer=crowd, state="marked",
                   numerators=sv.astype(np.int64), denominator=15)
        mask_store(galaxy=g, image=im, structure="bar", producer=crowd, state="marked",
                   numerators=bv.astype(np.int64), denominator=15)
        for structure, plane in (("spiral", arm), ("bar", bar)):
            mask_store(galaxy=g, image=im, structure=structure, producer=truth, state="marked",
                       numerators=plane.astype(np.int64), denominator=1)
        splits.append(split_for(ra, dec, name=g.name))
    assert {"train", "val", "test"} <= set(splits)
    return crowd


N_GALAXIES = 24
TINY_CONFIG = {"encoder": "resnet18", "image_size": 32, "batch_size": 4, "patience": 5}


def _position(i: int) -> tuple[float, float]:
    return 30.0 + 0.5 * i, 2.0 + 0.3 * i


@functools.cache
def tiny_training(epochs: int, seed: int = 0):
    """The real training (``evalcore.unet.train``) of a tiny U-Net on the toy survey's own train and validation
    splits, run once per test session for each (epochs, seed) and shared by every test that needs a trained
    version but does not test training itself."""
    from evalcore.unet.data import Sample
    from evalcore.unet.model import UNetConfig
    from evalcore.unet.train import train

    samples = {"train": [], "val": []}
    for i in range(N_GALAXIES):
        rgb, _, _, sv, bv = galaxy_maps(i)
        split = split_for(*_position(i), name=f"q{i}")
        if split in samples:
            samples[split].append(Sample(image=rgb, spiral=sv / 15, bar=bv / 15, key=f"q{i}"))
    config = UNetConfig(**TINY_CONFIG, epochs=epochs, seed=seed)
    return train(config, samples["train"], samples["val"], threads=1)


def train_version(epochs: int, seed: int = 0) -> ModelVersion:
    """A version of the session's tiny training on the toy survey (``quality_survey``), stored and then evaluated,
    gated and activated when it passed, as ``training.run_train`` does after training."""
    from segmentation.services import quality_gate

    items = training.labelled_galaxies(selection={"synthetic": True})
    version = training.model_version_create(run=None, result=tiny_training(epochs, seed), items=items)
    quality_gate.evaluate_and_gate(version=version)
    quality_gate.activate_if_passed(version=version)
    version.refresh_from_db()
    return version


def store_arc_finder(kind: str) -> Producer:
    """Arc-finder spiral masks on every survey image: "perfect" (= the truth) or "empty" (asked, none found)."""
    arcs = producer_get_or_create(kind=Producer.Kind.SPARCFIRE, name="arc finder", version="test")
    for image in Image.objects.select_related("galaxy"):
        i = int(image.galaxy.name[1:])
        _, arm, _, _, _ = galaxy_maps(i)
        plane = arm if kind == "perfect" else np.zeros_like(arm)
        mask_store(galaxy=image.galaxy, image=image, structure="spiral", producer=arcs,
                            state="marked" if plane.any() else "empty", numerators=plane.astype(np.int64),
                            denominator=1)
    return arcs
