"""Toy galaxies for unit tests and benchmarks of the network code (no Django).

Not the synthetic survey of issue 3: just an exponential disk with logarithmic spiral arms and an
optional bar, fast to draw at any size, with soft "crowd" fraction maps that follow the true structure.
Enough for a network to learn something in seconds, so speed and precision checks run on trained weights.
"""
from __future__ import annotations

import math

import numpy as np

from evalcore.unet.data import Sample


def toy_galaxy(rng: np.random.Generator, size: int = 64, *, barred: bool | None = None,
               bar_asked: bool = True, key: str = "", truth: dict | None = None) -> Sample:
    """One toy galaxy, ``size`` x ``size`` px. If ``truth`` is a dict, the true boolean masks are put in it
    under "spiral" and "bar"."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    c = (size - 1) / 2 + rng.uniform(-0.03, 0.03, 2) * size
    dx, dy = xx - c[0], yy - c[1]
    r = np.hypot(dx, dy) / size + 1e-6
    phi = np.arctan2(dy, dx)
    arms = int(rng.integers(1, 4))
    pitch = math.radians(rng.uniform(10, 35))
    phase = rng.uniform(0, 2 * math.pi)
    width = rng.uniform(0.25, 0.45)
    spiral_phase = (phi - np.log(r / 0.05) / math.tan(pitch)) * arms + phase
    arm_profile = np.exp((np.cos(spiral_phase) - 1) / width)  # 1 on the arm crest
    window = (r > 0.08) & (r < 0.42)
    arm_true = (arm_profile > 0.5) & window
    disk = np.exp(-r / 0.12)
    barred = bool(rng.random() < 0.4) if barred is None else barred
    bar_true = np.zeros_like(arm_true)
    bar_light = np.zeros_like(disk)
    if barred:
        a = rng.uniform(0, math.pi)
        u = dx * math.cos(a) + dy * math.sin(a)
        v = -dx * math.sin(a) + dy * math.cos(a)
        length, thick = rng.uniform(0.10, 0.18) * size, rng.uniform(0.025, 0.045) * size
        bar_true = (np.abs(u) < length) & (np.abs(v) < thick)
        bar_light = np.exp(-((u / length) ** 4 + (v / thick) ** 2))
    arm_light = arm_profile * window * np.exp(-r / 0.25)
    red = 0.55 * disk + 0.55 * bar_light + 0.25 * arm_light
    green = 0.45 * disk + 0.35 * bar_light + 0.45 * arm_light
    blue = 0.35 * disk + 0.15 * bar_light + 0.70 * arm_light
    rgb = np.stack([red, green, blue], -1) + rng.normal(0, 0.03, (size, size, 3))
    image = np.clip(rgb * 255, 0, 255).astype(np.uint8)
    # the "crowd": fewer than all volunteers mark each pixel, and they draw softly around the truth
    spiral = np.clip(arm_profile * window * rng.uniform(0.5, 0.9), 0, 1).astype(np.float32)
    if truth is not None:
        truth.update(spiral=arm_true, bar=bar_true)
    bar = None
    if bar_asked:
        bar = (bar_true * rng.uniform(0.5, 0.9)).astype(np.float32)
    return Sample(image=image, spiral=spiral, bar=bar, key=key)


def toy_samples(n: int, size: int = 64, seed: int = 0, *, bar_asked_fraction: float = 0.7) -> list[Sample]:
    """``n`` toy galaxies, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    return [toy_galaxy(rng, size, bar_asked=bool(rng.random() < bar_asked_fraction), key=f"toy-{seed}-{i}")
            for i in range(n)]


def toy_with_truth(n: int, size: int = 64, seed: int = 0, *,
                   bar_asked_fraction: float = 0.7) -> list[tuple[Sample, dict]]:
    """Like ``toy_samples``, each with its true masks {"spiral": bool (H, W), "bar": bool (H, W)}."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        truth: dict = {}
        asked = bool(rng.random() < bar_asked_fraction)
        out.append((toy_galaxy(rng, size, bar_asked=asked, key=f"toy-{seed}-{i}", truth=truth), truth))
    return out
