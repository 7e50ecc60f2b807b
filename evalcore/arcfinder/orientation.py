"""Multi-scale orientation field (SpArcFiRe step 2).

The field is kept as a complex "doubled-angle" array ``E = s * exp(2i theta)``: strength ``s`` and ridge
direction ``theta`` (rad, counter-clockwise from +col with rows pointing down, modulo pi). Doubling the angle
makes theta and theta + pi the same vector, so fields of different scales add without sign flips.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

COS45 = float(np.cos(np.pi / 4))


def ridge_kernels(radius: int = 5, n: int = 9) -> np.ndarray:
    """(n, 2r+1, 2r+1) ridge filters at angles k*pi/n: a 1-D Mexican hat (1 - d^2) exp(-d^2/2) across the
    ridge times a Gaussian along it, zero mean and unit L2 norm. ``d`` spans about +-2.9 over the kernel."""
    size = 2 * radius + 1
    scale = np.pi * 2 * radius / size / radius  # kernel edge at d ~ 2.86, as in SpArcFiRe
    rr, cc = np.mgrid[-radius:radius + 1, -radius:radius + 1].astype(np.float64) * scale
    y, x = -rr, cc  # math orientation: angles counter-clockwise as displayed
    out = np.empty((n, size, size))
    for k in range(n):
        t = k * np.pi / n
        along = x * np.cos(t) + y * np.sin(t)
        across = -x * np.sin(t) + y * np.cos(t)
        kern = (1 - across ** 2) * np.exp(-across ** 2 / 2) * np.exp(-along ** 2 / (2 * (scale * radius / 2) ** 2))
        # no mean subtraction: SpArcFiRe's kernels keep their small positive mean
        out[k] = kern / np.linalg.norm(kern)
    return out


def raw_field(img: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Doubled-angle energy of one scale: sum_k max(response_k, 0)^2 exp(2i theta_k). The image is taken
    as 0 outside its frame (MATLAB's ``conv2(..., 'same')``, as SpArcFiRe)."""
    n, size, _ = kernels.shape
    pad = size // 2
    padded = np.pad(img, pad, mode="constant")
    shape = padded.shape
    spectrum = np.fft.rfft2(padded)
    energy = np.zeros(img.shape, np.complex128)
    for k in range(n):
        kf = np.fft.rfft2(kernels[k][::-1, ::-1], s=shape)
        resp = np.fft.irfft2(spectrum * kf, s=shape)[2 * pad:, 2 * pad:][:img.shape[0], :img.shape[1]]
        energy += np.maximum(resp, 0) ** 2 * np.exp(2j * k * np.pi / n)
    return energy


def to_vectors(energy: np.ndarray) -> np.ndarray:
    """Doubled-angle energy -> (H, W, 2) orientation vectors s (cos phi, sin phi), phi = angle / 2 in
    (-pi/2, pi/2]: SpArcFiRe's representation, in which phi and phi + pi are the same orientation."""
    s, phi = np.abs(energy), np.angle(energy) / 2
    return np.stack([s * np.cos(phi), s * np.sin(phi)], axis=-1)


def _orientation_combine(a: np.ndarray, b: np.ndarray, add: bool) -> np.ndarray:
    """a + b (or a - b) as orientations: b is taken with the sign that makes the sum longer (shorter)."""
    b = np.where(b[..., 1:2] < 0, -b, b)
    total, diff = a + b, a - b
    longer = (np.linalg.norm(total, axis=-1) > np.linalg.norm(diff, axis=-1))[..., None]
    return np.where(longer, total, diff) if add else np.where(longer, diff, total)


def _shrink(img: np.ndarray, f: int) -> np.ndarray:
    """1/f of the size, smoothed first (MATLAB's ``imresize`` shrinks with an anti-aliasing kernel)."""
    return ndimage.zoom(ndimage.gaussian_filter(img, 0.5 * f), 1 / f, order=1, grid_mode=True, mode="nearest")


def _grow(vectors: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    zoom = (shape[0] / vectors.shape[0], shape[1] / vectors.shape[1])
    return np.stack([ndimage.zoom(vectors[..., i], zoom, order=3, grid_mode=True, mode="nearest")
                     for i in range(2)], axis=-1)


def multiscale_field(img: np.ndarray, levels: int = 3, radius: int = 5, n: int = 9) -> np.ndarray:
    """(H, W, 2) orientation vectors of 1/2^(levels-1) ... 1 of the size, merged coarse to fine as SpArcFiRe
    does (``mergeOriFields``): coarse + gain * (fine - coarse) as orientations, gain = |fine| / (|coarse| +
    |fine|), the coarse vectors resized (cubic) to the finer grid."""
    kernels = ridge_kernels(radius, n)
    merged = None
    for level in range(levels - 1, -1, -1):
        f = 2 ** level
        small = img if f == 1 else _shrink(img, f)
        fine = to_vectors(raw_field(small, kernels))
        if merged is None:
            merged = fine
            continue
        coarse = _grow(merged, fine.shape[:2])
        cs, fs = np.linalg.norm(coarse, axis=-1), np.linalg.norm(fine, axis=-1)
        total = cs + fs
        gain = np.divide(fs, total, out=np.zeros_like(fs), where=total > 0)[..., None]
        merged = _orientation_combine(coarse, gain * _orientation_combine(fine, coarse, add=False), add=True)
    return merged


def denoise(vectors: np.ndarray, distance: int = 5) -> np.ndarray:
    """SpArcFiRe's de-noising (``deNoiseOrientationField``): each vector becomes its unit direction times the
    median, over its 4 diagonal neighbours ``distance`` px away (those inside the frame), of
    max(|a . b| - cos 45deg, 0) / (|a| |b|). The strength is thus a coherence in [0, 1): near |cos| of the
    angle to the neighbours where the ridge response is strong, 0 where it is weak or incoherent."""
    h, w, _ = vectors.shape
    norm = np.linalg.norm(vectors, axis=-1)
    sims = np.full((4, h, w), np.nan)
    d = distance
    for i, (dr, dc) in enumerate(((d, d), (d, -d), (-d, d), (-d, -d))):
        rs, re_ = max(0, -dr), min(h, h - dr)
        cs, ce = max(0, -dc), min(w, w - dc)
        a = vectors[rs:re_, cs:ce]
        b = vectors[rs + dr:re_ + dr, cs + dc:ce + dc]
        den = norm[rs:re_, cs:ce] * norm[rs + dr:re_ + dr, cs + dc:ce + dc]
        dot = np.abs((a * b).sum(axis=-1))
        sims[i, rs:re_, cs:ce] = np.divide(np.maximum(dot - COS45, 0), den, out=np.zeros_like(den), where=den > 0)
    unit = np.divide(vectors, norm[..., None], out=np.zeros_like(vectors), where=norm[..., None] > 0)
    return unit * _median_of_valid(sims)[..., None]


def _median_of_valid(values: np.ndarray) -> np.ndarray:
    """Median along axis 0 ignoring NaNs (0 where all are NaN); np.nanmedian is ~10x slower here."""
    ordered = np.sort(values, axis=0)  # NaNs last
    count = np.isfinite(values).sum(axis=0)
    filled = np.nan_to_num(ordered)
    lo = np.take_along_axis(filled, np.maximum((count - 1) // 2, 0)[None], axis=0)[0]
    hi = np.take_along_axis(filled, np.minimum(count // 2, values.shape[0] - 1)[None], axis=0)[0]
    return np.where(count > 0, 0.5 * (lo + hi), 0.0)


def orientation_field(img: np.ndarray, levels: int = 3, radius: int = 5, n: int = 9,
                      denoise_distance: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(strength, ridge angle theta in rad, in (-pi/2, pi/2]) of a [0, 1] image, as SpArcFiRe computes them:
    after de-noising the strength is a local coherence in [0, 1) (see :func:`denoise`), and the similarity
    cut-off (0.15) keeps ridges that are both strong and coherent with their surroundings."""
    vectors = denoise(multiscale_field(img, levels, radius, n), denoise_distance)
    return np.linalg.norm(vectors, axis=-1), np.arctan2(vectors[..., 1], vectors[..., 0])
