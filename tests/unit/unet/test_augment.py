"""Training augmentation: geometry shared by image and maps, photometry of the image only, draws fixed by
(seed, epoch, item, operation), every operation switchable, single-band images as grey."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from evalcore.unet import augment as aug
from evalcore.unet.data import FractionDataset, Sample, check_image, preprocess
from evalcore.unet.model import UNetConfig

ALL_OFF = {name: False for name in aug.SWITCHES}
TINY = dict(encoder="tu-mobilenetv3_small_050", image_size=32, decoder_channels=(16, 16, 8, 8, 8), batch_size=4)


def _pattern(s: int = 32) -> np.ndarray:
    """An asymmetric shape: a bar, an off-centre blob and an L, so every rotation and flip shows."""
    m = np.zeros((s, s), np.float32)
    m[4:8, 4:24] = 1.0
    m[18:28, 20:24] = 1.0
    m[22:26, 8:22] = 1.0
    return m


def _item(s: int = 32):
    p = _pattern(s)
    image = torch.from_numpy(np.stack([p, p, p]))
    target = torch.from_numpy(np.stack([p, p[::-1].copy()]))
    return image, target


def test_geometry_moves_image_and_target_identically_with_every_switch_on():
    cfg = UNetConfig(**TINY)
    image, target = _item()
    # photometry off, so the image's first channel must equal the first map wherever it moved
    cfg_geom = cfg.replace(**{name: False for name in aug.PHOTOMETRIC})
    changed = 0
    for index in range(12):
        img2, tgt2 = aug.augment(image, target, cfg_geom, seed=1, epoch=0, index=index)
        assert torch.allclose(img2[0], tgt2[0], atol=1e-6)
        changed += not torch.allclose(tgt2[0], target[0], atol=0.05)
    assert changed == 12


def test_photometry_never_touches_the_target_and_keeps_the_geometry():
    cfg = UNetConfig(**TINY)
    image, target = _item()
    for index in range(12):
        _, tgt_all = aug.augment(image, target, cfg, seed=2, epoch=3, index=index)
        only_geom = cfg.replace(**{name: False for name in aug.PHOTOMETRIC})
        _, tgt_geom = aug.augment(image, target, only_geom, seed=2, epoch=3, index=index)
        assert torch.equal(tgt_all, tgt_geom)  # the colour operations change nothing in the labels
    # and with only photometry on, the target is returned as it came
    photo_only = cfg.replace(**{name: False for name in aug.GEOMETRIC})
    for index in range(6):
        img2, tgt2 = aug.augment(image, target, photo_only, seed=2, epoch=0, index=index)
        assert torch.allclose(tgt2, target, atol=1e-6)
        assert img2.min() >= 0 and img2.max() <= 1


def test_each_photometric_operation_changes_the_image_when_on_and_nothing_when_off():
    rng_image = torch.from_numpy(np.random.default_rng(0).uniform(0.1, 0.9, (3, 32, 32)).astype(np.float32))
    off = aug.photometric(rng_image, aug.item_generators(0, 0, 0), {})
    assert torch.equal(off, rng_image)
    for name in aug.PHOTOMETRIC:
        changed = False
        for index in range(20):  # the probabilistic ones fire on some items
            out = aug.photometric(rng_image, aug.item_generators(0, 0, index), {name: True})
            changed |= not torch.allclose(out, rng_image, atol=1e-4)
        assert changed, name


def test_greyscale_and_permutation_do_what_they_say():
    image = torch.stack([torch.full((8, 8), v) for v in (0.1, 0.5, 0.9)])
    greys = [aug.photometric(image, aug.item_generators(0, 0, i), {"greyscale": True}) for i in range(30)]
    grey = [g for g in greys if not torch.equal(g, image)]
    assert grey and all(torch.allclose(g, torch.full_like(g, 0.5), atol=1e-6) for g in grey)
    perms = [aug.photometric(image, aug.item_generators(0, 0, i), {"channel_permute": True}) for i in range(30)]
    assert all(sorted(p[:, 0, 0].tolist()) == pytest.approx([0.1, 0.5, 0.9]) for p in perms)
    assert any(p[0, 0, 0] != image[0, 0, 0] for p in perms)


def test_same_seed_same_draws_and_switching_one_off_keeps_the_others():
    cfg = UNetConfig(**TINY)
    image, target = _item()
    a = aug.augment(image, target, cfg, seed=5, epoch=2, index=7)
    b = aug.augment(image, target, cfg, seed=5, epoch=2, index=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = aug.augment(image, target, cfg, seed=6, epoch=2, index=7)
    assert not torch.equal(a[0], c[0])
    # noise off: the geometry (target) is exactly the same draw
    d = aug.augment(image, target, cfg.replace(noise=False), seed=5, epoch=2, index=7)
    assert torch.equal(a[1], d[1])


def test_dataset_is_deterministic_per_seed_and_epoch():
    from evalcore.unet.toy import toy_samples

    cfg = UNetConfig(**TINY)
    samples = toy_samples(3, 40, seed=4)
    x = FractionDataset(samples, cfg, augment=True, seed=9)
    y = FractionDataset(samples, cfg, augment=True, seed=9)
    x.set_epoch(2)
    y.set_epoch(2)
    for i in range(3):
        assert torch.equal(x[i][0], y[i][0]) and torch.equal(x[i][1], y[i][1])


def test_all_switches_off_is_the_plain_preprocessed_item():
    from evalcore.unet.toy import toy_samples

    cfg = UNetConfig(**TINY, **ALL_OFF)
    samples = toy_samples(2, 40, seed=1)
    plain = FractionDataset(samples, cfg, augment=False)[1]
    augmented = FractionDataset(samples, cfg, augment=True, seed=3)[1]
    assert torch.allclose(plain[0], augmented[0], atol=1e-5)
    assert torch.allclose(plain[1], augmented[1], atol=1e-5)


def test_single_band_images_are_fed_as_grey_to_all_channels():
    band = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    rgb = check_image(band)
    assert rgb.shape == (20, 30, 3) and all(np.array_equal(rgb[..., c], band) for c in range(3))
    assert check_image(band[..., None]).shape == (20, 30, 3)
    cfg = UNetConfig(**TINY)
    assert torch.equal(preprocess(band, cfg), preprocess(rgb, cfg))
    sample = Sample(band, spiral=np.zeros((20, 30), np.float32))
    assert sample.image.shape == (20, 30, 3)
    with pytest.raises(ValueError, match="single band"):
        check_image(np.zeros((20, 30, 2), np.uint8))


def test_augmentation_settings_are_recorded():
    cfg = UNetConfig(**TINY).replace(blur=False)
    s = aug.settings(cfg)
    assert s["blur"] is False and s["rotate"] is True and s["crop_area"] == [0.6, 0.8]
    assert set(aug.SWITCHES) <= set(s)
    # a config without the newer switches (an older model's) still loads, with them on
    d = cfg.to_dict()
    for name in ("scale", "colour_jitter", "channel_permute", "greyscale", "blur", "noise", "crop"):
        d.pop(name)
    assert UNetConfig.from_dict(d).noise is True
