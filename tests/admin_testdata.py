"""Galaxies with images and masks for the admin tests (integration and browser), made through the services.

The picture is a small barred spiral (exponential disc, two logarithmic arms, a bar) plus a bright star in
the north-east (top-left) corner, so orientation mistakes show. The band data are written the FITS way
(row 0 = south, WCS CD2_2 > 0), i.e. upside down relative to the stored RGB, as a survey cutout is.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

from segmentation.models import Galaxy, Image, Mask
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.imports.batches import batch_finish, batch_start
from segmentation.services.masks import mask_store, producer_get_or_create
from segmentation.services.truth import TRUTH_PRODUCER

STAR = (3, 3)  # (row, col) of the bright star in the stored RGB (row 0 = north)
VOLUNTEERS = 15


@dataclass
class GalaxyData:
    galaxy: Galaxy
    image: Image
    masks: dict  # (structure, producer kind) -> Mask (current)
    history: list  # superseded masks


def galaxy_light(size: int) -> dict[str, np.ndarray]:
    """Model components on a (size, size) grid, row 0 = north: disc, arms, bar (arbitrary flux units)."""
    y, x = np.mgrid[:size, :size].astype(np.float64)
    c = (size - 1) / 2
    dx, dy = x - c, y - c
    r = np.hypot(dx, dy) + 1e-6
    theta = np.arctan2(dy, dx)
    scale = size / 8
    disc = np.exp(-r / scale)
    pitch = np.tan(np.radians(20))
    # two arms: a logarithmic spiral, phase theta - ln(r)/tan(pitch)
    phase = 2 * (theta - np.log(r / scale) / pitch)
    arms = np.clip(np.cos(phase), 0, None) ** 4 * np.exp(-r / (2.5 * scale)) * (r > scale * 0.9)
    bar = np.exp(-((dx / (1.6 * scale)) ** 2 + (dy / (0.35 * scale)) ** 2))
    return {"disc": disc, "arms": arms, "bar": bar}


def images_for(size: int) -> tuple[np.ndarray, bytes]:
    """(RGB uint8 with row 0 = north, FITS bytes of a g,r,z cube in FITS orientation with a TAN WCS)."""
    light = galaxy_light(size)
    grey = light["disc"] + 0.8 * light["arms"] + 0.9 * light["bar"]
    grey[STAR] += 3.0
    cube = np.stack([grey * 0.8, grey, grey * 1.3]).astype(np.float32)  # g, r, z: a reddish galaxy
    rgb = np.stack([np.arcsinh(10 * b) / np.arcsinh(10 * cube.max()) for b in (cube[2], cube[1], cube[0])], axis=-1)
    rgb = np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    hdu = fits.PrimaryHDU(cube[:, ::-1, :])  # FITS rows run south -> north
    s = 0.262 / 3600
    for key, value in {"BAND0": "g", "BAND1": "r", "BAND2": "z", "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
                       "CRPIX1": (size + 1) / 2, "CRPIX2": (size + 1) / 2, "CRVAL1": 150.0, "CRVAL2": 2.0,
                       "CD1_1": -s, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": s}.items():
        hdu.header[key] = value
    buf = io.BytesIO()
    hdu.writeto(buf)
    return rgb, buf.getvalue()


def make_galaxy(name: str, *, size: int = 48, synthetic: bool = False, with_raw: bool = True,
                identifiers: dict | None = None, redshift: float | None = 0.03) -> GalaxyData:
    """A galaxy with a survey-cutout image and masks from volunteers (spiral marked, bar NOT ASKED),
    a model (spiral marked, bar asked-nothing-marked), the arc finder (spiral) and, if synthetic, truth."""
    galaxy, _ = galaxy_upsert(name=name, match=identifiers or {},
                              defaults={"ra": 150.0, "dec": 2.0, "redshift": redshift})
    if synthetic and not galaxy.synthetic:
        galaxy.synthetic = True
        galaxy.save(update_fields=["synthetic"])
    rgb, raw = images_for(size)
    image, _ = image_store(galaxy=galaxy, kind="survey_cutout", rgb=rgb, pixel_scale=0.262,
                           bands="grz asinh (Legacy Survey)", raw_fits=raw if with_raw else None)
    light = galaxy_light(size)
    arms = light["arms"] / light["arms"].max()
    batch = batch_start(kind="gz3d", source=f"/data/gz3d_{name}.fits.gz")
    batch_finish(batch=batch, summary={
        "imported": 1, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 1,
        "failures": [{"where": "bad.fits", "reason": "truncated gzip"}], "warnings": [],
        "counters": {"dropped polygons": 2}})
    vol = producer_get_or_create(kind="volunteers", name="GZ3D", version="v4_0_0")
    model = producer_get_or_create(kind="model", name="unet-resnet18", version="v1",
                                   parameters={"threshold": None, "input_px": 224}, code_version="abc123")
    arcs = producer_get_or_create(kind="sparcfire", name="sparcfire-py", version="0.1",
                                  parameters={"min_arc_px": 10}, code_version="def456")
    common = {"galaxy": galaxy, "image": image}
    first = mask_store(**common, structure="spiral", producer=vol, state="marked",
                       numerators=np.rint(arms * 9).astype(np.int64), denominator=VOLUNTEERS,
                       n_volunteers=VOLUNTEERS, batch=batch).mask
    masks = {
        ("spiral", "volunteers"): mask_store(
            **common, structure="spiral", producer=vol, state="marked",
            numerators=np.rint(arms * VOLUNTEERS).astype(np.int64), denominator=VOLUNTEERS,
            n_volunteers=VOLUNTEERS, batch=batch).mask,
        ("bar", "volunteers"): mask_store(**common, structure="bar", producer=vol, state="not_asked").mask,
        ("spiral", "model"): mask_store(
            **common, structure="spiral", producer=model, state="marked",
            numerators=np.rint(np.clip(arms * 1.2, 0, 1) * 255).astype(np.int64), denominator=255).mask,
        ("bar", "model"): mask_store(
            **common, structure="bar", producer=model, state="empty",
            numerators=np.zeros((size, size), np.int64), denominator=255).mask,
        ("spiral", "sparcfire"): mask_store(
            **common, structure="spiral", producer=arcs, state="marked",
            numerators=(arms > 0.3).astype(np.int64), denominator=1).mask,
    }
    if synthetic:
        truth = producer_get_or_create(**TRUTH_PRODUCER)
        for structure, plane in (("spiral", arms > 0.2), ("bar", light["bar"] > 0.5)):
            masks[(structure, "truth")] = mask_store(
                **common, structure=structure, producer=truth, state="marked",
                numerators=plane.astype(np.int64), denominator=1).mask
    assert masks[("spiral", "volunteers")].supersedes_id == first.pk
    return GalaxyData(galaxy=galaxy, image=image, masks=masks, history=[Mask.objects.get(pk=first.pk)])
