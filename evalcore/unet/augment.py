"""Random geometric augmentation applied identically to an image and its fraction maps (no Django).

One affine resampling does rotation (any angle), mirroring and a random resized crop together, so image
and maps see exactly the same sampling grid and are interpolated only once. It works on the network's
square input (after ``data.preprocess``), where normalised coordinates are isotropic. Regions that
rotate in from outside the frame are zero: black sky in the image, "no structure" in the maps.
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


def random_geometry(rng: np.random.Generator, *, rotate: bool = True, flip: bool = True,
                    crop_area: tuple[float, float] = (0.6, 0.8),
                    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Geometry:
    """Draw a geometry: uniform angle in [0, 360) deg, mirror with p = 1/2 (with free rotation one mirror
    axis covers all flips), crop area a fraction of the frame in ``crop_area`` with log-uniform aspect
    ratio in ``crop_ratio``, placed uniformly where it fits inside the frame."""
    angle = float(rng.uniform(0.0, 360.0)) if rotate else 0.0
    mirror = bool(rng.random() < 0.5) if flip else False
    area = float(rng.uniform(*crop_area))
    ratio = math.exp(float(rng.uniform(math.log(crop_ratio[0]), math.log(crop_ratio[1]))))
    half_w = min(1.0, math.sqrt(area * ratio))
    half_h = min(1.0, math.sqrt(area / ratio))
    cx = float(rng.uniform(-(1.0 - half_w), 1.0 - half_w))
    cy = float(rng.uniform(-(1.0 - half_h), 1.0 - half_h))
    return Geometry(angle, mirror, half_w, half_h, cx, cy)


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
