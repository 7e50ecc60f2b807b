"""Ground truth carried inside synthetic FITS files (no Django).

A synthetic GZ3D file or survey cutout holds, after its ordinary HDUs, two extensions found by name:

- ``TRUTH_MASKS``: uint8 image of shape (2, H, W) on that file's image grid; plane 0 = spiral arms,
  plane 1 = bar; 1 where the component dominates the local light (rule in docs/synthetic.md);
- ``TRUTH_PARAMS``: a one-row table with a single column ``json``: the galaxy's true parameters
  (bar length in px and kpc, bar position angle, arm count, pitch angle, chirality, redshift, ...).

Readers of real files ignore both; the importers store them when present, as masks of the ``truth``
producer and as ``Galaxy.truth``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from astropy.io import fits

MASKS_EXTNAME = "TRUTH_MASKS"
PARAMS_EXTNAME = "TRUTH_PARAMS"


@dataclass
class Truth:
    spiral: np.ndarray  # (H, W) uint8 0/1
    bar: np.ndarray  # (H, W) uint8 0/1
    params: dict


def truth_hdus(spiral: np.ndarray, bar: np.ndarray, params: dict) -> list:
    masks = fits.ImageHDU(np.stack([spiral, bar]).astype(np.uint8), name=MASKS_EXTNAME)
    payload = json.dumps(params, sort_keys=True)
    col = fits.Column(name="json", format=f"{max(len(payload), 1)}A", array=np.array([payload]))
    table = fits.BinTableHDU.from_columns([col], name=PARAMS_EXTNAME)
    return [masks, table]


def read_truth(hdul: fits.HDUList) -> Truth | None:
    """The truth of an opened file, or None when it has none (every real file)."""
    names = [h.name for h in hdul]
    if MASKS_EXTNAME not in names or PARAMS_EXTNAME not in names:
        return None
    masks = np.asarray(hdul[MASKS_EXTNAME].data)
    if masks.ndim != 3 or masks.shape[0] != 2:
        raise ValueError(f"{MASKS_EXTNAME} must have shape (2, H, W), got {masks.shape}")
    raw = hdul[PARAMS_EXTNAME].data["json"][0]
    params = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return Truth(spiral=(masks[0] > 0).astype(np.uint8), bar=(masks[1] > 0).astype(np.uint8), params=params)
