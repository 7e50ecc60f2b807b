"""Reading the output folders of a real SpArcFiRe run (no Django).

Per galaxy ``<name>``: ``<name>-H_clusMask-merged.png`` (its clusters on the 256x256 standardised grid) with
``<name>-elps-fit-params.txt`` (centre, axis ratio, crop radius, rotation), reprojected here to the input's
frame through the map SpArcFiRe standardised with, or else ``<name>-K_clusMask-reprojected.png`` (SpArcFiRe's
own reprojection, about 1.5 px off; see :func:`reproject_h`), ``<name>_arcs.csv`` or the run's
``galaxy_arcs.csv`` (one row per arc), ``<name>.csv`` or ``galaxy.csv`` (galaxy-level values) and
``<name>-S_settings.txt``.
Frames: SpArcFiRe's input frame is the FITS array as read (row 0 = first FITS row), not north-up, and its
S/Z letters and signed pitch angles describe the arms as they look with that row at the top. A survey FITS
file keeps north at its last row, so SpArcFiRe sees the sky mirrored top to bottom: its "S-wise" is a Z
on the sky. :func:`in_image_frame` gives the project's convention (the letter and sign as the galaxy looks
in the stored image, north up), the one the arc finder and the measurements use.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

K_SUFFIX = "-K_clusMask-reprojected.png"
H_SUFFIX = "-H_clusMask-merged.png"
ELPS_SUFFIX = "-elps-fit-params.txt"
SETTINGS_SUFFIX = "-S_settings.txt"
GALAXY_FIELDS = ("fit_state", "warnings", "chirality_maj", "chirality_alenWtd", "chirality_longestArc",
                 "pa_longest", "pa_avg", "pa_alenWtd_avg", "pa_alenWtd_avg_domChiralityOnly", "totalNumArcs",
                 "diskAxisRatio", "diskMajAxsLen", "diskMajAxsAngleRadians", "inputCenterR", "inputCenterC",
                 "iptSz", "bar_candidate_available", "bar_used", "bar_angle_input_img",
                 "bar_half_length_input_img", "top2_chirality_agreement", "cropRad")


NAME_COLUMNS = ("name", "gxyName")  # kept as text: SDSS objids do not survive a float


class SparcfireOutputError(ValueError):
    """A SpArcFiRe output that cannot be read; the message names the file and the reason."""


@dataclass
class GalaxyOutput:
    name: str
    folder: Path
    mask: np.ndarray | None = None       # (H, W) bool in SpArcFiRe's input frame: its arms
    mask_source: str = ""                # "H+elps" (its grid mask reprojected here) or "K" (its own reprojection)
    k_mask: np.ndarray | None = None     # its -K_clusMask-reprojected.png as written, when present
    arcs: list[dict] = field(default_factory=list)
    galaxy: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _value(text: str):
    text = text.strip().strip("'")
    if text.startswith("[") and text.endswith("]"):
        parts = [p for p in re.split(r"[\s;]+", text[1:-1].strip()) if p]
        values = [_value(p) for p in parts]
        return values
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and re.fullmatch(r"[+-]?\d+", text) else number


def read_settings(path: Path) -> dict:
    """``key: value`` lines of ``-S_settings.txt`` -> dict (the file may repeat its block; last wins)."""
    out = {}
    for line in path.read_text(errors="replace").splitlines():
        if ":" in line:
            key, _, value = line.partition(":")
            if key.strip():
                out[key.strip()] = _value(value)
    return out


def read_elps(path: Path) -> dict:
    """``name=value#name=value...`` of ``-elps-fit-params.txt`` -> dict (matrices as nested lists)."""
    out = {}
    for part in path.read_text(errors="replace").strip().split("#"):
        if "=" in part:
            key, _, value = part.partition("=")
            value = value.strip()
            if ";" in value:
                out[key.strip()] = [_value(f"[{row}]") for row in value.strip("[]").split(";")]
            else:
                out[key.strip()] = _value(value)
    return out


def read_csv_rows(path: Path) -> list[dict]:
    """A SpArcFiRe CSV (spaces after commas, a trailing comma) -> list of {column: value}."""
    with path.open(newline="", errors="replace") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return []
    header = [h.strip() for h in rows[0]]
    out = []
    for row in rows[1:]:
        if not any(c.strip() for c in row):
            continue
        out.append({h: (v.strip() if h in NAME_COLUMNS else _value(v)) for h, v in zip(header, row) if h})
    return out


def arc_row(row: dict) -> dict:
    """One ``_arcs.csv`` row with the colour parsed to an [r, g, b] list in 0..1."""
    out = dict(row)
    colour = row.get("clusOutputColor")
    if isinstance(colour, str):
        colour = _value(colour)
    out["clusOutputColor"] = colour
    out["gxyName"] = str(row.get("gxyName", ""))
    return out


def binary_mask(path: Path) -> np.ndarray:
    """Any non-black pixel of a cluster-mask PNG = arm."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
    except OSError as exc:
        raise SparcfireOutputError(f"{path.name}: not a readable PNG ({exc})") from None
    return arr.sum(axis=2) > 0


def sparcfire_geometry(elps: dict, shape: tuple[int, int]):
    """SpArcFiRe's map between its 256 px grid and its input of ``shape`` (H, W), from ``-elps-fit-params.txt``.

    ``muFit`` is the centre in its x-y frame (1-based, y up), so the centre is row H - muFit[1], column
    muFit[0] - 1 (0-based); the major axis points at ``pi/2 - rotAngle`` counter-clockwise from +x; the grid
    spans 2 ``cropRad`` + 1 px; the minor axis is stretched by 1/``diskAxisRatio`` when deprojected.
    Raises SparcfireOutputError when a value is missing.
    """
    from evalcore.arcfinder.preprocess import grid_geometry

    try:
        mu_x, mu_y = (float(v) for v in elps["muFit"][:2])
        rot = float(elps["rotAngle"])
        crop = float(elps["cropRad"])
        deproject = bool(elps.get("useDeProjectStretch", 1))
        q = float(elps.get("diskAxisRatio", 1.0)) if deproject else 1.0
    except (KeyError, TypeError, ValueError) as exc:
        raise SparcfireOutputError(f"elps-fit-params lack a usable value ({exc})") from None
    h, _ = shape
    angle = math.pi / 2 - rot
    major = np.array([-math.sin(angle), math.cos(angle)])  # (drow, dcol)
    return grid_geometry(h - mu_y, mu_x - 1, major, q, crop, 256, deproject=deproject)


def reproject_h(mask_h: np.ndarray, elps: dict, shape: tuple[int, int]) -> np.ndarray:
    """The standardised-grid mask -> SpArcFiRe's input frame of ``shape`` (H, W) px, by nearest sampling
    through :func:`sparcfire_geometry`, the map SpArcFiRe standardised with.

    SpArcFiRe's own ``-K_clusMask-reprojected.png`` is not quite this: its reprojection cuts the input's
    frame out of a 1024 px canvas with a rounding that puts the galaxy's centre about 1.5 px lower and
    further right, and scales by the ellipse's axis length instead of the crop. On the eleven SDSS runs of
    the fixtures, SpArcFiRe's arcs reprojected here overlap the galaxy where its image shows them; the -K
    mask sits 1-2 px down and right of them.
    """
    from evalcore.arcfinder.preprocess import to_input_frame

    if mask_h.shape != (256, 256):
        raise SparcfireOutputError(f"the cluster mask is {mask_h.shape[1]}x{mask_h.shape[0]} px, not 256x256")
    return to_input_frame(mask_h.astype(np.int32), sparcfire_geometry(elps, shape), shape) > 0


MIRRORED = {"S": "Z", "Z": "S"}


def chirality_letter(verdict) -> str | None:
    """SpArcFiRe's verdict ("S-wise", "Z-wise", "EQ", ...) -> "S", "Z" or None."""
    text = str(verdict or "").strip().strip("'").upper()
    return text[0] if text[:1] in ("S", "Z") else None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def in_image_frame(galaxy: dict, flipped: bool) -> dict:
    """SpArcFiRe's galaxy-level chirality and pitch in the stored image's frame.

    ``flipped``: the image was stored with its rows reversed from SpArcFiRe's input (north-up from a FITS
    file with north at its last row). A top-to-bottom flip mirrors the galaxy, so S and Z swap and signed
    pitch angles change sign. Returns ``chirality`` ("S"/"Z"/None, the arc-length-weighted verdict),
    ``pitch_angle_deg`` (signed, arc-length-weighted over the dominant chirality; + = S-wise) and
    ``pitch_angle_longest_deg`` (the longest arc's).
    """
    sign = -1.0 if flipped else 1.0
    letter = chirality_letter(galaxy.get("chirality_alenWtd"))
    pitch = _number(galaxy.get("pa_alenWtd_avg_domChiralityOnly"))
    longest = _number(galaxy.get("pa_longest"))
    return {
        "chirality": MIRRORED.get(letter) if flipped else letter,
        "pitch_angle_deg": None if pitch is None else sign * pitch,
        "pitch_angle_longest_deg": None if longest is None else sign * longest,
    }


def _input_shape(out: GalaxyOutput, fallback: tuple[int, int] | None) -> tuple[int, int] | None:
    size = out.galaxy.get("iptSz")
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, (int, float)) for v in size):
        return int(size[0]), int(size[1])
    return fallback


def find_galaxies(directory: Path) -> list[tuple[str, Path]]:
    """(name, folder) of every galaxy with a cluster mask under ``directory`` (any depth), sorted."""
    found = {}
    for suffix in (K_SUFFIX, H_SUFFIX):
        for path in directory.rglob(f"*{suffix}"):
            name = path.name[: -len(suffix)]
            found.setdefault((name, path.parent), None)
    return sorted(found)


def _run_tables(directory: Path, folder: Path, filename: str) -> list[Path]:
    """The run-level table (``galaxy_arcs.csv`` / ``galaxy.csv``) nearest above ``folder``."""
    out = []
    for parent in [folder, *folder.parents]:
        if (parent / filename).is_file():
            out.append(parent / filename)
            break
        if parent == directory:
            break
    return out


def read_galaxy(directory: Path, name: str, folder: Path, input_shape: tuple[int, int] | None = None
                ) -> GalaxyOutput:
    """Everything SpArcFiRe wrote about one galaxy. ``input_shape`` (H, W) of the input image is needed to
    reproject ``-H_clusMask-merged.png`` when the run has no ``-K_`` mask and its CSV lacks ``iptSz``."""
    out = GalaxyOutput(name=name, folder=folder)
    settings = folder / f"{name}{SETTINGS_SUFFIX}"
    if settings.is_file():
        out.settings = read_settings(settings)
    own = folder / f"{name}.csv"
    rows = read_csv_rows(own) if own.is_file() else []
    if not rows:
        for table in _run_tables(directory, folder, "galaxy.csv"):
            rows = [r for r in read_csv_rows(table) if str(r.get("name", "")).strip() == name]
    if rows:
        out.galaxy = {k: rows[0][k] for k in GALAXY_FIELDS if k in rows[0]}
    arcs_file = folder / f"{name}_arcs.csv"
    arcs = read_csv_rows(arcs_file) if arcs_file.is_file() else []
    if not arcs_file.is_file():
        for table in _run_tables(directory, folder, "galaxy_arcs.csv"):
            arcs = [r for r in read_csv_rows(table) if str(r.get("gxyName", "")).strip() == name]
    out.arcs = [arc_row(r) for r in arcs]
    k_path, h_path = folder / f"{name}{K_SUFFIX}", folder / f"{name}{H_SUFFIX}"
    elps_path = folder / f"{name}{ELPS_SUFFIX}"
    if k_path.is_file():
        out.k_mask = binary_mask(k_path)
    shape = _input_shape(out, input_shape) or (out.k_mask.shape if out.k_mask is not None else None)
    if h_path.is_file() and elps_path.is_file() and shape is not None:
        elps = read_elps(elps_path)
        elps.setdefault("useDeProjectStretch", out.settings.get("useDeProjectStretch", 1))
        out.mask, out.mask_source = reproject_h(binary_mask(h_path), elps, shape), "H+elps"
    elif out.k_mask is not None:
        out.mask, out.mask_source = out.k_mask, "K"
        out.notes.append(f"no {H_SUFFIX} with {ELPS_SUFFIX}: SpArcFiRe's own {K_SUFFIX} is used, which lies "
                         "about 1.5 px lower and further right than the galaxy in SpArcFiRe's frame")
    elif h_path.is_file():
        if not elps_path.is_file():
            raise SparcfireOutputError(f"{h_path.name} needs {elps_path.name} to be reprojected, and it is missing")
        raise SparcfireOutputError(f"{h_path.name}: the input image size is unknown (no iptSz in {name}.csv "
                                   "and no input image given)")
    else:
        raise SparcfireOutputError(f"{name}: no {K_SUFFIX} or {H_SUFFIX} in {folder}")
    return out
