"""Deterministic train / validation / test split by sky position (no Django).

The split of a galaxy is a hash of the ~1 arcmin sky cell it lies in, so everything at one position -
a GZ3D subject and a survey cutout of the same object, repeat observations, close pairs - lands in the
same split, whatever order or installation it was imported in. Fractions: 70 / 10 / 20.

Cells: declination bands 1 arcmin high; each band is cut into ``round(360 * 60 * cos(dec_mid))`` equal
RA cells (at least 1), so cells are close to 1 x 1 arcmin everywhere (equal-area to within the band's
cos(dec) spread). A cell's split = the first 8 bytes of sha256("evalsite-split:v1:cell:<band>:<ra index>")
read as a number in [0, 1), compared with 0.7 and 0.8.

Near a cell edge two detections of the same object a few arcsec apart could fall in different cells;
``assign_splits`` (for a whole set) and ``split_with_neighbours`` (for a newcomer next to stored ones) let a
position inherit the split of anything already within ``radius_arcsec``.

Without a position the split is the same kind of hash of the normalised name
("evalsite-split:v1:name:<name lower-cased, inner whitespace collapsed>"). Such a galaxy has no sky
identity, so a later import of it with a position can land elsewhere: store the split once it is made.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from evalcore.vocabulary import SPLITS, TEST, TRAIN, VAL

FRACTIONS = (0.7, 0.1, 0.2)
CELL_ARCMIN = 1.0
VERSION = "v1"


def _unit_hash(text: str) -> float:
    digest = hashlib.sha256(f"evalsite-split:{VERSION}:{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _split_of(u: float) -> str:
    if u < FRACTIONS[0]:
        return TRAIN
    return VAL if u < FRACTIONS[0] + FRACTIONS[1] else TEST


def sky_cell(ra: float, dec: float) -> tuple[int, int]:
    """(dec band, RA index) of the ~1 arcmin cell holding (ra, dec) in deg (ICRS)."""
    ra, dec = float(ra), float(dec)
    if not (math.isfinite(ra) and math.isfinite(dec)):
        raise ValueError(f"position must be finite, got ra={ra}, dec={dec}")
    if not -90.0 <= dec <= 90.0:
        raise ValueError(f"dec must lie in [-90, 90] deg, got {dec}")
    n_bands = int(round(180 * 60 / CELL_ARCMIN))
    band = min(int((dec + 90.0) * 60 / CELL_ARCMIN), n_bands - 1)
    dec_mid = -90.0 + (band + 0.5) * CELL_ARCMIN / 60
    n_ra = max(1, int(round(360 * 60 / CELL_ARCMIN * math.cos(math.radians(dec_mid)))))
    ra_index = int((ra % 360.0) / 360.0 * n_ra) % n_ra
    return band, ra_index


def split_for(ra: float | None, dec: float | None, *, name: str | None = None) -> str:
    """"train", "val" or "test" for a position in deg; by ``name`` when there is no position."""
    if ra is None or dec is None:
        if not name or not str(name).strip():
            raise ValueError("a split needs a position (ra, dec) or a name")
        return _split_of(_unit_hash("name:" + " ".join(str(name).lower().split())))
    band, ra_index = sky_cell(ra, dec)
    return _split_of(_unit_hash(f"cell:{band}:{ra_index}"))


def _unit_vectors(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], -1)


def _chord(radius_arcsec: float) -> float:
    return 2 * math.sin(math.radians(radius_arcsec / 3600) / 2)


def split_with_neighbours(ra: float | None, dec: float | None, *, name: str | None = None,
                          stored: Sequence[tuple[float, float, str]] = (), radius_arcsec: float = 5.0) -> str:
    """The split of the nearest ``stored`` (ra, dec, split) within ``radius_arcsec``, else ``split_for``."""
    if ra is None or dec is None or not len(stored):
        return split_for(ra, dec, name=name)
    sky_cell(ra, dec)  # validates
    arr = np.asarray([(s[0], s[1]) for s in stored], dtype=float)
    d = np.linalg.norm(_unit_vectors(arr[:, 0], arr[:, 1]) - _unit_vectors(np.array([ra]), np.array([dec])), axis=1)
    i = int(np.argmin(d))
    if d[i] <= _chord(radius_arcsec):
        if stored[i][2] not in SPLITS:
            raise ValueError(f"stored split {stored[i][2]!r} is not one of {SPLITS}")
        return stored[i][2]
    return split_for(ra, dec, name=name)


def assign_splits(positions: Sequence[tuple[float | None, float | None]], *, names: Sequence[str] | None = None,
                  radius_arcsec: float = 5.0) -> list[str]:
    """Splits for a whole set: positions linked by chains of separations <= ``radius_arcsec`` form one group,
    and a group takes the split of the cell of its member that sorts first by (ra, dec). The result does
    not depend on the order of the input."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n = len(positions)
    names = list(names) if names is not None else [None] * n
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} positions")
    out: list[str | None] = [None] * n
    located = [i for i, (ra, dec) in enumerate(positions) if ra is not None and dec is not None]
    located_set = set(located)
    for i in range(n):
        if i not in located_set:
            out[i] = split_for(None, None, name=names[i])
    if located:
        pts = np.asarray([positions[i] for i in located], dtype=float)
        for ra, dec in pts:
            sky_cell(ra, dec)
        tree = cKDTree(_unit_vectors(pts[:, 0], pts[:, 1]))
        pairs = tree.query_pairs(_chord(radius_arcsec), output_type="ndarray")
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])) if len(pairs) else ([], ([], [])),
                           shape=(len(located), len(located)))
        _, labels = connected_components(graph, directed=False)
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            lead = min(members, key=lambda k: (pts[k, 0] % 360.0, pts[k, 1]))
            split = split_for(pts[lead, 0], pts[lead, 1])
            for k in members:
                out[located[k]] = split
    return out  # type: ignore[return-value]
