"""Galaxy Zoo: 3D per-galaxy FITS files: reader, writer and the volunteer counts (no Django).

Layout (DR17 VAC v4_0_0; docs/gz3d.md): 11 HDUs without EXTNAMEs, read by index.

    0  image the volunteers saw, (H, W, 3) uint8, row 0 = top of the JPEG (north); header has the WCS
    1  centre mask, 2 star mask (H, W) float64
    3  spiral, 4 bar: per pixel, number of volunteer polygons containing it (H, W) float64
    5  one-row metadata table (ra, dec, MANGAID, IAUNAME, ...)
    6  centre clusters, 7 star clusters, 8 raw centre/star clicks (tables)
    9  raw spiral drawings, 10 raw bar drawings: classification_id, time_stamp, <task>_paths (JSON)

Size and pixel scale always come from the file (525 px at 0.099"/px in the release, but not assumed).
Polygons are in image pixels with the fill rule of ``evalcore.sky.rasterise``. Synthetic files may carry
ground truth after HDU 10 (``evalcore.formats.truthfile``).
"""
from __future__ import annotations

import functools
import gzip
import io
import json
import math
import os
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from evalcore.formats import coords, files, fitsbytes, imagefiles, truthfile
from evalcore.sky import rasterise

N_HDUS = 11
SPIRAL_HDU, BAR_HDU = 9, 10
SPIRAL_COUNTS_HDU, BAR_COUNTS_HDU = 3, 4
METADATA_HDU = 5
TASK_COLUMNS = {SPIRAL_HDU: "spiral_paths", BAR_HDU: "bar_paths"}
RELEASE_PIXEL_SCALE = 0.099  # arcsec / px
# a vertex further than this fraction of the image size outside the frame is not a slip of the mouse
FAR_OUTSIDE_FRACTION = 0.5
SUMMARY_FILES = ("gz3d_metadata.fits", "gz3d_galaxy_centers.fits", "gz3d_foreground_stars.fits")
CLUSTER_COLUMNS = ("x", "y", "var_x", "var_y", "var_x_y", "ra", "dec", "var_ra", "var_dec", "var_ra_dec", "count")


class GZ3DError(ValueError):
    """A file that cannot be read as a GZ3D file; the message says what is wrong with it."""


@dataclass
class Classification:
    """One volunteer's drawing for one task (a row of HDU 9 or 10)."""

    classification_id: int
    time_stamp: str
    polygons: list  # list of polygons, each a list of [x, y] vertices in image px; [] = drew nothing


@dataclass
class GZ3DFile:
    path: str
    image: np.ndarray  # (H, W, 3) uint8, row 0 = top of the JPEG (north)
    header: fits.Header  # HDU 0 header, with the WCS
    metadata: dict  # HDU 5 row as python scalars
    spiral: list[Classification]  # HDU 9 rows
    bar: list[Classification]  # HDU 10 rows
    spiral_counts: np.ndarray  # HDU 3, (H, W) float64
    bar_counts: np.ndarray  # HDU 4, (H, W) float64
    truth: truthfile.Truth | None = None
    # tasks whose JSON could not be parsed (only when read with strict_json=False): task -> reason
    unusable_tasks: dict = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    @property
    def wcs(self) -> WCS:
        return celestial_wcs(self.header)

    @property
    def pixel_scale(self) -> float:
        """arcsec / px, from the WCS."""
        return coords.pixel_scale_arcsec(self.wcs)


# --- geometry ---------------------------------------------------------------------------------------
def make_wcs_header(ra: float, dec: float, shape: tuple[int, int], pixel_scale: float = RELEASE_PIXEL_SCALE
                    ) -> fits.Header:
    """The release's TAN WCS for an image of ``shape`` (H, W) px centred on (ra, dec) [deg] at
    ``pixel_scale`` [arcsec/px]: CRPIX = (W/2, H/2) as the release wrote it, north up (row 0), east left."""
    height, width = shape
    w = WCS(naxis=2)
    w.wcs.crpix = [width / 2, height / 2]
    w.wcs.crval = [float(ra), float(dec)]
    w.wcs.cd = np.array([[-1.0, 0.0], [0.0, -1.0]]) * pixel_scale / 3600.0
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    return w.to_header()


def celestial_wcs(header: fits.Header) -> WCS:
    """The 2-D celestial WCS of a header (HDU 0 of a GZ3D file has NAXIS 3 for the RGB planes); a GZ3D
    file must have one."""
    try:
        w = coords.celestial_wcs(header)
    except coords.WCSError as exc:
        raise GZ3DError(f"the image header has an {exc}") from None
    if w is None:
        raise GZ3DError("the image header has no celestial WCS")
    return w


# --- polygons and counts ----------------------------------------------------------------------------
def check_polygon(poly, shape: tuple[int, int]) -> tuple[np.ndarray | None, str | None]:
    """(vertices as an (n, 2) float array or None when they are not numbers, reason to drop it or None).

    Dropped: not a list of [x, y] numbers, non-finite coordinates, fewer than 3 distinct vertices, or a
    vertex more than ``FAR_OUTSIDE_FRACTION`` of the image size (H, W) outside the frame.
    """
    try:
        pts = np.asarray(poly, dtype=np.float64)
    except (TypeError, ValueError):
        return None, "not a list of [x, y] vertices"
    if pts.ndim != 2 or pts.shape[1] != 2:
        if pts.size == 0:
            return None, "fewer than 3 vertices"
        return None, "not a list of [x, y] vertices"
    if not np.all(np.isfinite(pts)):
        return None, "non-finite vertex"
    if len(np.unique(pts, axis=0)) < 3:
        return pts, "fewer than 3 vertices"
    height, width = shape
    mx, my = FAR_OUTSIDE_FRACTION * width, FAR_OUTSIDE_FRACTION * height
    if (pts[:, 0].min() < -mx or pts[:, 0].max() > width - 1 + mx
            or pts[:, 1].min() < -my or pts[:, 1].max() > height - 1 + my):
        return pts, "vertex far outside the image"
    return pts, None


def clean_polygons(polygons, shape: tuple[int, int]) -> tuple[list, dict[str, int]]:
    """Split a classification's polygons into usable ones and dropped ones (``check_polygon``).
    Returns (kept polygons as lists of [x, y] floats, {reason: count})."""
    kept, dropped = [], {}
    for poly in polygons or []:
        pts, reason = check_polygon(poly, shape)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            kept.append(pts.tolist())
    return kept, dropped


@dataclass
class TaskRaster:
    """One task's classifications rasterised once, both ways (see ``rasterise_task``)."""

    volunteer_counts: np.ndarray  # int64 (H, W): classifications whose polygons cover the pixel
    polygon_counts: np.ndarray  # float64 (H, W): HDU 3 / 4 style
    kept: list[list]  # per classification, its usable polygons
    dropped: list[dict[str, int]]  # per classification, {reason: count} of dropped polygons


def rasterise_task(classifications, shape: tuple[int, int]) -> TaskRaster:
    """Rasterise every polygon of a task once and build both count maps.

    ``volunteer_counts``: per classification the union of its usable polygons (``check_polygon``),
    summed; divide by len(classifications) for fractions. ``polygon_counts``: as the release made HDU 3 / 4:
    every polygon counts once (one volunteer's overlapping polygons count twice), self-intersecting paths
    are left out, and polygons we drop as unusable still count when they can be drawn.
    """
    volunteers = np.zeros(shape, np.int64)
    polygons = np.zeros(shape, np.float64)
    kept_all, dropped_all = [], []
    union = np.zeros(shape, bool)
    for c in classifications:
        lo, hi = shape[0], 0  # rows this classification touched: only those need clearing and adding
        kept, dropped = [], {}
        for poly in c.polygons or []:
            pts, reason = check_polygon(poly, shape)
            if pts is None or len(pts) < 3:
                if reason:
                    dropped[reason] = dropped.get(reason, 0) + 1
                continue
            first, block = rasterise.polygon_rows(pts, shape)
            rows = slice(first, first + len(block))
            if reason:
                dropped[reason] = dropped.get(reason, 0) + 1
            else:
                kept.append(pts.tolist())
                union[rows] |= block
                if len(block):
                    lo, hi = min(lo, first), max(hi, first + len(block))
            if not rasterise.is_self_intersecting(pts):
                polygons[rows] += block
        if hi > lo:
            volunteers[lo:hi] += union[lo:hi]
            union[lo:hi] = False
        kept_all.append(kept)
        dropped_all.append(dropped)
    return TaskRaster(volunteers, polygons, kept_all, dropped_all)


def volunteer_counts(classifications, shape: tuple[int, int]) -> np.ndarray:
    """Per pixel, how many classifications cover it (int64, (H, W)): the union of each classification's
    usable polygons (``clean_polygons``), summed. Divide by len(classifications) for fractions."""
    out = np.zeros(shape, np.int64)
    for c in classifications:
        kept, _ = clean_polygons(c.polygons, shape)
        out += rasterise.union_mask(kept, shape)
    return out


def polygon_counts(classifications, shape: tuple[int, int]) -> np.ndarray:
    """HDU 3 / 4 as the release made them (float64): every polygon counts once, so one volunteer's
    overlapping polygons count twice; self-intersecting paths are left out."""
    out = np.zeros(shape, np.float64)
    for c in classifications:
        for poly in c.polygons or []:
            pts, _ = check_polygon(poly, shape)
            if pts is not None and len(pts) >= 3 and not rasterise.is_self_intersecting(pts):
                first, block = rasterise.polygon_rows(pts, shape)
                out[first:first + len(block)] += block
    return out


# --- writer -----------------------------------------------------------------------------------------
# The writer lays the FITS bytes out itself (``evalcore.formats.fitsbytes``): building astropy
# table HDUs cost ~60 ms per file, most of the synthetic survey's time; the bytes are the same.
def _metadata_columns(metadata: dict) -> list[tuple[str, str, list]]:
    cols = []
    for name, value in metadata.items():
        if isinstance(value, bool | np.bool_):
            cols.append((name, "L", [bool(value)]))
        elif isinstance(value, int | np.integer):
            cols.append((name, "K", [int(value)]))
        elif isinstance(value, float | np.floating):
            cols.append((name, "D", [float(value)]))
        else:
            cols.append((name, "A", ["" if value is None else str(value)]))
    return cols


def _drawings_hdu(classifications: list[Classification], column: str) -> bytes:
    return fitsbytes.table_hdu([
        ("classification_id", "K", [int(c.classification_id) for c in classifications]),
        ("time_stamp", "A", [str(c.time_stamp) for c in classifications]),
        (column, "A", [json.dumps(c.polygons) for c in classifications]),
    ], len(classifications))


@functools.lru_cache(maxsize=1)
def _cluster_hdu() -> bytes:
    # the same empty table in every file: laid out once
    return fitsbytes.table_hdu([(n, "K" if n == "count" else "D", []) for n in CLUSTER_COLUMNS], 0)


def _extra_hdu_bytes(hdu) -> bytes:
    if isinstance(hdu, bytes | bytearray):
        return bytes(hdu)
    return fitsbytes.astropy_hdu_bytes(hdu)


def gz3d_bytes(*, image: np.ndarray, header: fits.Header, metadata: dict, spiral: list[Classification],
               bar: list[Classification], extra_hdus=(), counts: tuple[np.ndarray, np.ndarray] | None = None,
               celestial_header: fits.Header | None = None) -> bytes:
    """The FITS bytes (uncompressed) of ``write_gz3d``'s file. ``extra_hdus``: astropy HDUs or the bytes
    of already laid-out extensions (``evalcore.formats.fitsbytes``). ``counts``: HDU 3 / 4 when
    the caller has them already (``rasterise_task(...).polygon_counts``), else computed here.
    ``celestial_header``: the 2-D WCS header of HDUs 1-4 when the caller has it (``make_wcs_header``'s
    output is one), else ``celestial_wcs(header).to_header()``."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.dtype} {image.shape}")
    shape = image.shape[:2]
    if counts is None:
        counts = (polygon_counts(spiral, shape), polygon_counts(bar, shape))
    if celestial_header is None:
        celestial_header = celestial_wcs(header).to_header()
    wcs_cards = fitsbytes.header_cards(celestial_header)
    blank = fitsbytes.image_hdu(np.zeros(shape, np.float64), wcs_cards)
    clicks = sorted({int(c.classification_id) for c in [*spiral, *bar]})
    parts = [
        fitsbytes.image_hdu(image, fitsbytes.header_cards(header), primary=True),
        blank,
        blank,
        *(fitsbytes.image_hdu(np.asarray(c, np.float64), wcs_cards) for c in counts),
        fitsbytes.table_hdu(_metadata_columns(metadata), 1),
        _cluster_hdu(),
        _cluster_hdu(),
        fitsbytes.table_hdu([("classification_id", "K", clicks), ("time_stamp", "A", [""] * len(clicks)),
                             ("center_points", "A", ["[]"] * len(clicks)),
                             ("star_points", "A", ["[]"] * len(clicks))], len(clicks)),
        _drawings_hdu(spiral, TASK_COLUMNS[SPIRAL_HDU]),
        _drawings_hdu(bar, TASK_COLUMNS[BAR_HDU]),
        *(_extra_hdu_bytes(h) for h in extra_hdus),
    ]
    return b"".join(parts)


def write_gz3d(path, *, image: np.ndarray, header: fits.Header, metadata: dict, spiral: list[Classification],
               bar: list[Classification], extra_hdus=()) -> None:
    """Write a file in the release layout (11 HDUs, then ``extra_hdus``). HDU 3 / 4 are computed from the
    polygons as the release did (``polygon_counts``); centre/star masks and tables are empty but valid.
    ``path`` ending in ``.gz`` is gzip-compressed. ``image`` is (H, W, 3) uint8, row 0 = north."""
    data = gz3d_bytes(image=image, header=header, metadata=metadata, spiral=spiral, bar=bar,
                      extra_hdus=extra_hdus)
    path = os.fspath(path)
    if path.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    Path(path).write_bytes(data)


# --- reader -----------------------------------------------------------------------------------------
def _scalar(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, np.generic):
        value = value.item()
        return value.decode("utf-8", "replace").strip() if isinstance(value, bytes) else value
    return value


def _table_row(hdu, index: int) -> dict:
    data = hdu.data
    if data is None or len(data) == 0:
        raise GZ3DError(f"HDU {index} (metadata) has no rows")
    return {name: _scalar(data[name][0]) for name in data.columns.names}


def _plane(hdul, index: int, shape: tuple[int, int], what: str) -> np.ndarray:
    data = hdul[index].data
    if data is None:
        raise GZ3DError(f"HDU {index} ({what}) has no data")
    if data.shape != shape:
        raise GZ3DError(f"HDU {index} ({what}) has shape {data.shape}, expected {shape} like the image")
    if data.dtype.kind not in "fiu":
        raise GZ3DError(f"HDU {index} ({what}) has dtype {data.dtype.name}, expected numbers")
    plane = np.asarray(data, dtype=np.float64)
    if not np.all(np.isfinite(plane)):
        raise GZ3DError(f"HDU {index} ({what}) contains NaN or infinite pixels")
    if plane.min() < 0:
        raise GZ3DError(f"HDU {index} ({what}) has negative counts")
    return plane


def _drawings(hdul, index: int, strict_json: bool) -> tuple[list[Classification], str | None]:
    column = TASK_COLUMNS[index]
    hdu = hdul[index]
    if not isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
        raise GZ3DError(f"HDU {index} is not a table (expected the raw {column})")
    data = hdu.data
    names = [] if data is None else list(data.columns.names)
    if data is None or len(data) == 0:
        return [], None
    if "classification_id" not in names:
        raise GZ3DError(f"HDU {index} has no column 'classification_id' (columns: {', '.join(names)})")
    out, problem = [], None
    if column not in names:
        reason = f"HDU {index} has no column {column!r} (columns: {', '.join(names)})"
        if strict_json:
            raise GZ3DError(reason)
        problem = reason
    stamps = data["time_stamp"] if "time_stamp" in names else [""] * len(data)
    paths = data[column] if column in names else ["[]"] * len(data)
    for cid, stamp, raw in zip(data["classification_id"], stamps, paths):
        cid = int(cid)
        text = _scalar(raw)
        try:
            polygons = json.loads(text)
            if not isinstance(polygons, list):
                raise ValueError(f"a list of polygons was expected, got {type(polygons).__name__}")
        except ValueError as exc:
            reason = f"HDU {index} classification {cid}: {column} is not valid JSON ({exc})"
            if strict_json:
                raise GZ3DError(reason) from None
            problem, polygons = problem or reason, []
        out.append(Classification(classification_id=cid, time_stamp=str(_scalar(stamp)), polygons=polygons))
    return out, problem


def _open_error(path: Path, exc: Exception) -> GZ3DError:
    if isinstance(exc, EOFError | zlib.error | gzip.BadGzipFile):
        return GZ3DError(f"truncated or corrupt gzip data ({exc})")
    return GZ3DError(f"not a readable FITS file ({exc})")


def read_gz3d(path, *, strict_json: bool = True, max_bytes: int | None = None,
              max_pixels: int | None = None) -> GZ3DFile:
    """Read one per-galaxy file (``.fits`` or ``.fits.gz``). Raises ``GZ3DError`` naming the problem.

    ``max_bytes`` bounds the file and its decompressed size, ``max_pixels`` the image (checked from the
    header, before any pixel is read).

    With ``strict_json=False`` a task whose polygons cannot be parsed (bad JSON, or no paths column) is
    returned with its rows but empty polygons and listed in ``unusable_tasks``, so a caller can fall back
    to HDU 3 / 4 divided by the number of rows.
    """
    path = Path(path)
    if not path.is_file():
        raise GZ3DError("no such file")
    try:
        # one pass of decompression: astropy on a gzip file seeks back and inflates again per HDU
        raw = files.read_bytes_limited(path, max_bytes)
    except files.FileLimitError as exc:
        raise GZ3DError(str(exc)) from None
    except OSError as exc:
        raise _open_error(path, exc) from None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(io.BytesIO(raw), memmap=False, lazy_load_hdus=False)
    except GZ3DError:
        raise
    except Exception as exc:  # astropy raises OSError, ValueError, EOFError... for broken files
        raise _open_error(path, exc) from None
    truncated = [str(w.message) for w in caught if "truncated" in str(w.message)]
    with hdul:
        if truncated:
            raise GZ3DError(f"truncated FITS file ({truncated[0].splitlines()[0]})")
        if len(hdul) < N_HDUS:
            raise GZ3DError(f"has {len(hdul)} HDUs; a GZ3D file has {N_HDUS}")
        if max_pixels is not None:
            h0 = hdul[0].header
            pixels = int(h0.get("NAXIS1", 0)) * int(h0.get("NAXIS2", 0))
            if h0.get("NAXIS", 0) == 3 and int(h0.get("NAXIS1", 0)) == 3:  # (H, W, 3) is stored as NAXIS1 = 3
                pixels = int(h0.get("NAXIS2", 0)) * int(h0.get("NAXIS3", 0))
            if pixels > max_pixels:
                raise GZ3DError(f"HDU 0 image has {pixels} pixels, over the limit of {max_pixels}")
        try:
            for index in (*range(METADATA_HDU + 1), SPIRAL_HDU, BAR_HDU):  # 6-8 (centres, stars) are not used
                hdul[index].data  # noqa: B018 - read now so a damaged HDU fails here, with its reason
        except Exception as exc:
            raise _open_error(path, exc) from None
        image = hdul[0].data
        if image is None or image.ndim != 3 or image.shape[2] != 3:
            raise GZ3DError(f"HDU 0 image has shape {None if image is None else image.shape}, expected (H, W, 3)")
        if image.dtype != np.uint8:
            raise GZ3DError(f"HDU 0 image has dtype {image.dtype.name}, expected uint8")
        shape = image.shape[:2]
        if min(shape) < 2:
            raise GZ3DError(f"HDU 0 image is {shape[1]}x{shape[0]} px")
        header = hdul[0].header.copy()
        try:
            celestial_wcs(header)
        except GZ3DError:
            raise
        except Exception as exc:
            raise GZ3DError(f"HDU 0 header has an unusable WCS ({exc})") from None
        spiral_counts = _plane(hdul, SPIRAL_COUNTS_HDU, shape, "spiral counts")
        bar_counts = _plane(hdul, BAR_COUNTS_HDU, shape, "bar counts")
        for index, what in ((1, "centre mask"), (2, "star mask")):
            _plane(hdul, index, shape, what)
        if not isinstance(hdul[METADATA_HDU], fits.BinTableHDU | fits.TableHDU):
            raise GZ3DError(f"HDU {METADATA_HDU} is not a table (expected the metadata row)")
        metadata = _table_row(hdul[METADATA_HDU], METADATA_HDU)
        spiral, spiral_problem = _drawings(hdul, SPIRAL_HDU, strict_json)
        bar, bar_problem = _drawings(hdul, BAR_HDU, strict_json)
        if not spiral and not bar:
            raise GZ3DError("zero classifications: HDU 9 (spiral) and HDU 10 (bar) are both empty")
        try:
            truth = truthfile.read_truth(hdul)
        except (ValueError, KeyError) as exc:
            raise GZ3DError(f"unusable truth extensions ({exc})") from None
        if truth is not None and truth.spiral.shape != shape:
            raise GZ3DError(f"truth masks have shape {truth.spiral.shape}, expected {shape}")
        unusable = {k: v for k, v in (("spiral", spiral_problem), ("bar", bar_problem)) if v}
        return GZ3DFile(
            path=str(path), image=np.array(image), header=header, metadata=metadata, spiral=spiral, bar=bar,
            spiral_counts=spiral_counts, bar_counts=bar_counts, truth=truth, unusable_tasks=unusable,
        )


def read_gz3d_metadata(path) -> dict[str, dict]:
    """Rows of the release's ``gz3d_metadata.fits`` keyed by ``file_name`` (no ``gz3d_`` prefix, no ``.gz``)."""
    try:
        with fits.open(path, memmap=False) as hdul:
            table = next((h for h in hdul if isinstance(h, fits.BinTableHDU) and h.data is not None), None)
            if table is None:
                raise GZ3DError("has no table")
            names = list(table.data.columns.names)
            if "file_name" not in names:
                raise GZ3DError(f"has no file_name column (columns: {', '.join(names)})")
            rows = {}
            for rec in table.data:
                row = {n: _scalar(rec[n]) for n in names}
                rows[str(row["file_name"])] = row
            return rows
    except GZ3DError:
        raise
    except Exception as exc:
        raise GZ3DError(f"not a readable FITS table ({exc})") from None


def metadata_key(path) -> str:
    """The ``file_name`` under which ``gz3d_metadata.fits`` lists a per-galaxy file."""
    name = Path(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return name[len("gz3d_"):] if name.startswith("gz3d_") else name


def subject_id_from_name(path) -> int | None:
    """Zooniverse subject id from ``gz3d_<MANGAID>_<IFUDESIGNSIZE>_<subject>.fits[.gz]``, if it fits."""
    stem = metadata_key(path)
    stem = imagefiles.strip_image_suffix(stem) or stem  # .fits, .fit, .fts in any case
    last = stem.rsplit("_", 1)[-1]
    return int(last) if last.isdigit() and "_" in stem else None


def finite_or_none(value):
    """A float metadata value, or None when it is missing, NaN or infinite."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


# --- cross-check against HDU 3 / 4 ------------------------------------------------------------------
# above this fraction of marked pixels differing, a file's HDU 3 / 4 and its polygons disagree
DISAGREEMENT_THRESHOLD = 0.02
MAX_SHIFT = 3  # px searched by the offset detector


def _transforms(array: np.ndarray):
    yield "as stored", array
    yield "flipped up-down", array[::-1]
    yield "flipped left-right", array[:, ::-1]
    yield "rotated 180 deg", array[::-1, ::-1]
    if array.shape[0] == array.shape[1]:
        yield "transposed", array.T
    for dy in range(-MAX_SHIFT, MAX_SHIFT + 1):
        for dx in range(-MAX_SHIFT, MAX_SHIFT + 1):
            if dy or dx:
                # rolling the file's map by (dy, dx) undoes an offset of (-dx, -dy): name what the file did
                yield f"offset by dx={-dx}, dy={-dy} px", np.roll(array, (dy, dx), axis=(0, 1))


def _fraction_differing(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, int, int]:
    marked = (ours > 0) | (theirs > 0)
    n_marked = int(marked.sum())
    n_diff = int(np.count_nonzero(ours != theirs))
    return (n_diff / n_marked if n_marked else 0.0), n_diff, n_marked


def compare_counts(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Compare our HDU 3/4-style counts (``polygon_counts``) with the file's HDU 3 / 4.

    Returns JSON-ready facts: pixels differing, marked pixels (either map > 0), their ratio, the largest
    count difference, ``agrees`` (ratio <= DISAGREEMENT_THRESHOLD) and, when they disagree, the
    ``best_match``: which flip, transpose or shift of up to MAX_SHIFT px of the file's map agrees best
    with ours, and how well (a flipped or offset HDU shows up here rather than as noise).
    """
    theirs = np.asarray(theirs, dtype=np.float64)
    ours = np.asarray(ours, dtype=np.float64)
    fraction, n_diff, n_marked = _fraction_differing(ours, theirs)
    facts = {
        "pixels_differing": n_diff, "marked_pixels": n_marked, "fraction_differing": round(fraction, 4),
        "max_abs_difference": float(np.max(np.abs(ours - theirs))) if ours.size else 0.0,
        "agrees": fraction <= DISAGREEMENT_THRESHOLD,
    }
    if facts["agrees"]:
        return facts
    best_name, best_fraction = "as stored", fraction
    for name, candidate in _transforms(theirs):
        f, _, _ = _fraction_differing(ours, candidate)
        if f < best_fraction - 1e-12:
            best_name, best_fraction = name, f
    facts["best_match"] = {"transform": best_name, "fraction_differing": round(best_fraction, 4)}
    return facts


def describe_disagreement(hdu: int, facts: dict) -> str:
    """One line for a report: how HDU ``hdu`` disagrees with the re-rasterised polygons."""
    text = (f"HDU {hdu} differs from the re-rasterised polygons on {facts['pixels_differing']} of "
            f"{facts['marked_pixels']} marked pixels ({100 * facts['fraction_differing']:.1f}%)")
    best = facts.get("best_match")
    if best and best["transform"] != "as stored":
        verdict = "is" if best["fraction_differing"] <= DISAGREEMENT_THRESHOLD else "may be"
        text += (f"; the HDU {verdict} {best['transform']} ({100 * best['fraction_differing']:.1f}% differ "
                 "once that is undone)")
    return text
