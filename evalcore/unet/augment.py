"""Training augmentation (no Django): geometry applied identically to an image and its fraction maps, and
photometric changes applied to the image only.

Geometry: one affine resampling does rotation (any angle), mirroring, a random resized crop and a random
scale together, so image and maps see exactly the same sampling grid and are interpolated only once. It
works on the network's square input (after ``data.preprocess``), where normalised coordinates are
isotropic. Regions that come in from outside the frame are zero: black sky in the image, "no structure"
in the maps.

Photometry (image only; the maps describe where the structure is, which none of these change): colour
jitter (brightness, contrast, saturation, per-channel gain, gamma), channel permutation, greyscale, Gaussian
blur and Gaussian noise. They take away the cues a renderer or a survey leaves in colour, stretch, depth
and resolution, so the network has to learn the shape of arms and bars.

Each operation is switched on or off in ``UNetConfig`` (``rotate``, ``flip``, ``crop``, ``scale``,
``colour_jitter``, ``channel_permute``, ``greyscale``, ``blur``, ``noise``); its strength is a constant
here. Every operation draws from its own generator seeded by (seed, epoch, item, operation), so switching
one off leaves the draws of the others unchanged (an ablation changes one thing at a time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Geometry:
    """One draw: rotation (deg, counter-clockwise), mirror (left-right before rotating), crop half-sizes
    and centre in normalised coordinates of the input frame ([-1, 1] spans the whole side)."""

    angle_deg: float = 0.0
    mirror: bool = False
    half_width: float = 1.0
    half_height: float = 1.0
    centre_x: float = 0.0
    centre_y: float = 0.0

    def theta(self) -> torch.Tensor:
        """The (2, 3) matrix for ``F.affine_grid``: output coordinates -> input coordinates."""
        a = math.radians(self.angle_deg)
        c, s = math.cos(a), math.sin(a)
        m = -1.0 if self.mirror else 1.0
        # input = centre + R(a) @ diag(m, 1) @ diag(half_width, half_height) @ output
        return torch.tensor(
            [[c * m * self.half_width, -s * self.half_height, self.centre_x],
             [s * m * self.half_width, c * self.half_height, self.centre_y]],
            dtype=torch.float32,
        )


# Strengths of the switchable operations (docs/unet.md, "Augmentation").
SCALE_RANGE = (0.75, 1.35)  # zoom factor on the field seen, log-uniform (> 1 = zoom out, galaxy smaller)
BRIGHTNESS = (0.7, 1.3)  # multiplies the image
CONTRAST = (0.7, 1.3)  # about the image mean
SATURATION = (0.0, 1.6)  # 0 = grey, 1 = unchanged
CHANNEL_GAIN = (0.75, 1.3)  # per channel: the colour of arms relative to the disk changes between surveys
GAMMA = (0.6, 1.6)  # the display stretch
P_PERMUTE = 0.5  # random order of the three channels
P_GREY = 0.2  # all channels replaced by their mean (what a single-band image looks like)
P_BLUR, BLUR_SIGMA = 0.4, (0.4, 2.0)  # Gaussian PSF-like blur, sigma in network px
P_NOISE, NOISE_SIGMA = 0.5, (0.0, 0.06)  # additive Gaussian noise, sigma in [0, 1] image units

# operation ids in the generator seed (never reuse or renumber: they fix the draws of a seed)
_GEOMETRY, _SCALE, _JITTER, _PERMUTE, _GREY, _BLUR, _NOISE = range(7)


def random_geometry(rng: np.random.Generator, *, rotate: bool = True, flip: bool = True, crop: bool = True,
                    crop_area: tuple[float, float] = (0.6, 0.8),
                    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
                    scale: float = 1.0) -> Geometry:
    """Draw a geometry: uniform angle in [0, 360) deg, mirror with p = 1/2 (with free rotation one mirror
    axis covers all flips), crop area a fraction of the frame in ``crop_area`` with log-uniform aspect
    ratio in ``crop_ratio``, placed uniformly where it fits inside the frame (no crop: the whole frame).
    ``scale`` multiplies the crop's half sizes afterwards (> 1 zooms out: the frame shrinks inside a black
    border), the crop's centre kept."""
    angle = float(rng.uniform(0.0, 360.0)) if rotate else 0.0
    mirror = bool(rng.random() < 0.5) if flip else False
    area = float(rng.uniform(*crop_area))
    ratio = math.exp(float(rng.uniform(math.log(crop_ratio[0]), math.log(crop_ratio[1]))))
    half_w = min(1.0, math.sqrt(area * ratio)) if crop else 1.0
    half_h = min(1.0, math.sqrt(area / ratio)) if crop else 1.0
    u, v = float(rng.uniform(-1.0, 1.0)), float(rng.uniform(-1.0, 1.0))
    cx, cy = u * (1.0 - half_w), v * (1.0 - half_h)
    return Geometry(angle, mirror, half_w * scale, half_h * scale, cx, cy)


def apply_geometry(geometry: Geometry, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Resample each (C, S, S) tensor on the same grid (bilinear; maps are soft fractions, so bilinear
    is the right interpolation for them too)."""
    out = []
    theta = geometry.theta()[None]
    for t in tensors:
        if t.ndim != 3:
            raise ValueError(f"expected a (C, H, W) tensor, got shape {tuple(t.shape)}")
        grid = F.affine_grid(theta, [1, *t.shape], align_corners=False)
        out.append(F.grid_sample(t[None].float(), grid, mode="bilinear", padding_mode="zeros",
                                 align_corners=False)[0])
    return out


# --- photometry (image only) -------------------------------------------------------------------------------
def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, S, S) -> blurred, separable Gaussian kernel of radius 3 sigma, reflected at the edges."""
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = image.shape[0]
    t = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    t = F.conv2d(t, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    t = F.conv2d(t, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return t[0]


def photometric(image: torch.Tensor, rngs: dict[str, np.random.Generator], switches: dict[str, bool]) -> torch.Tensor:
    """The switched-on photometric operations on a (3, S, S) image in [0, 1], in a fixed order: colour
    jitter, channel permutation, greyscale, blur, noise; clamped to [0, 1]. ``rngs`` holds one generator per
    operation (``item_generators``), ``switches`` which operations run."""
    out = image.float()
    if switches.get("colour_jitter"):
        r = rngs["colour_jitter"]
        b, c, s = (float(r.uniform(*BRIGHTNESS)), float(r.uniform(*CONTRAST)), float(r.uniform(*SATURATION)))
        gains = torch.tensor(r.uniform(*CHANNEL_GAIN, size=3), dtype=torch.float32)[:, None, None]
        gamma = math.exp(float(r.uniform(math.log(GAMMA[0]), math.log(GAMMA[1]))))
        out = out.clamp(0, 1) ** gamma
        out = out * gains * b
        mean = out.mean()
        out = mean + (out - mean) * c
        grey = out.mean(dim=0, keepdim=True)
        out = grey + (out - grey) * s
    if switches.get("channel_permute"):
        r = rngs["channel_permute"]
        order = r.permutation(3) if r.random() < P_PERMUTE else np.arange(3)
        out = out[torch.from_numpy(order.astype(np.int64))]
    if switches.get("greyscale"):
        if rngs["greyscale"].random() < P_GREY:
            out = out.mean(dim=0, keepdim=True).expand_as(out).clone()
    if switches.get("blur"):
        r = rngs["blur"]
        if r.random() < P_BLUR:
            out = _gaussian_blur(out, float(r.uniform(*BLUR_SIGMA)))
    if switches.get("noise"):
        r = rngs["noise"]
        if r.random() < P_NOISE:
            sigma = float(r.uniform(*NOISE_SIGMA))
            out = out + torch.from_numpy(r.normal(0.0, sigma, size=tuple(out.shape)).astype(np.float32))
    return out.clamp_(0.0, 1.0)


def item_generators(seed: int, epoch: int, index: int) -> dict[str, np.random.Generator]:
    """One generator per operation for item ``index`` in ``epoch``: reproducible whatever the worker count."""
    ids = {"geometry": _GEOMETRY, "scale": _SCALE, "colour_jitter": _JITTER, "channel_permute": _PERMUTE,
           "greyscale": _GREY, "blur": _BLUR, "noise": _NOISE}
    return {name: np.random.default_rng([int(seed), int(epoch), int(index), k]) for name, k in ids.items()}


def augment(image: torch.Tensor, target: torch.Tensor, config, *, seed: int, epoch: int,
            index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment one training item: the same geometry for the (3, S, S) image and the (C, S, S) target, then
    the photometric operations on the image only. ``config`` is a ``UNetConfig`` (its switches)."""
    rngs = item_generators(seed, epoch, index)
    zoom = 1.0
    if config.scale:
        lo, hi = SCALE_RANGE
        zoom = math.exp(float(rngs["scale"].uniform(math.log(lo), math.log(hi))))
    geometry = random_geometry(rngs["geometry"], rotate=config.rotate, flip=config.flip, crop=config.crop,
                               crop_area=config.crop_area, crop_ratio=config.crop_ratio, scale=zoom)
    image, target = apply_geometry(geometry, image, target)
    image = photometric(image, rngs, {name: bool(getattr(config, name)) for name in PHOTOMETRIC})
    return image, target


GEOMETRIC = ("rotate", "flip", "crop", "scale")
PHOTOMETRIC = ("colour_jitter", "channel_permute", "greyscale", "blur", "noise")
SWITCHES = GEOMETRIC + PHOTOMETRIC


def settings(config) -> dict:
    """The augmentation a config trains with: switches, crop parameters and the strengths above (for the
    model version's manifest)."""
    return {
        **{name: bool(getattr(config, name)) for name in SWITCHES},
        "crop_area": list(config.crop_area), "crop_ratio": list(config.crop_ratio),
        "strengths": {"scale": list(SCALE_RANGE), "brightness": list(BRIGHTNESS), "contrast": list(CONTRAST),
                      "saturation": list(SATURATION), "channel_gain": list(CHANNEL_GAIN), "gamma": list(GAMMA),
                      "p_permute": P_PERMUTE, "p_grey": P_GREY, "p_blur": P_BLUR, "blur_sigma_px": list(BLUR_SIGMA),
                      "p_noise": P_NOISE, "noise_sigma": list(NOISE_SIGMA)},
    }
