"""Write a synthetic survey: per galaxy a GZ3D-layout file and a g,r,z survey cutout, both with truth.

Layout of the output folder (docs/synthetic.md):

    gz3d/gz3d_<MANGAID>_<IFUDESIGNSIZE>_<subject>.fits.gz   11 HDUs as the release + TRUTH_MASKS, TRUTH_PARAMS
    cutouts/<MANGAID>.fits                                  (3, H, W) float32 nmgy, TAN WCS, + truth HDUs
    cutouts.csv                                             name, ra, dec, redshift, pixel_scale, manga_id, file
    survey.json                                             settings, versions and the crowd statistics

Every galaxy depends only on (seed, index, versions), never on the order of work, so the files are the
same whether written by one process or several. No Django here.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import multiprocessing
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from evalcore.formats import fitsbytes, gz3d, truthfile
from evalcore.pixels import colour
from evalcore.synthetic import crowdstats, renderer, styles, volunteers
from evalcore.synthetic.population import (
    GZ3D_FIELD_ARCSEC,
    IFU_DIAMETERS,
    GalaxyParams,
    _scale_table,
    draw_galaxy,
    vary_structure,
)

RENDERER_VERSION = "1"
MIN_SIZE = 64  # px: below this a galaxy's arms are a few pixels wide
MAX_SIZE = 2048
CATALOGUE_NAME = "cutouts.csv"
SUMMARY_NAME = "survey.json"
CATALOGUE_COLUMNS = ("name", "ra", "dec", "redshift", "pixel_scale", "manga_id", "file")
GZIP_LEVEL = 1  # fast; level 6 saves only ~7% on these files and takes twice the time
# the fixed benchmark survey (docs/synthetic.md)
BENCHMARK = {"n": 2000, "seed": 20231204, "size": 256, "style": "classic"}


class SurveyError(ValueError):
    """Settings that cannot make a survey; the message says which and why."""


@dataclass(frozen=True)
class SurveySettings:
    n: int
    seed: int
    size: int  # px, both images are size x size
    out: Path
    crowd: str = "default"
    volunteers: int = volunteers.DEFAULT_VOLUNTEERS
    style: str = "classic"  # a style or a mix (evalcore.synthetic.styles); make_synthetic's default: DEFAULT_STYLE

    @property
    def gz3d_pixel_scale(self) -> float:
        """arcsec / px: the release's 52" field at the requested size."""
        return GZ3D_FIELD_ARCSEC / self.size

    @property
    def field_arcsec(self) -> float:
        """The smaller field of the two grids of a classic-style galaxy: every galaxy fits in both."""
        return self.field_for(colour.LEGACY_SURVEY_PIXEL_SCALE)

    def field_for(self, cutout_pixel_scale: float) -> float:
        """The smaller field of the GZ3D grid and a cutout at ``cutout_pixel_scale`` arcsec / px."""
        return min(GZ3D_FIELD_ARCSEC, self.size * cutout_pixel_scale)

    def as_dict(self) -> dict:
        return {"n": self.n, "seed": self.seed, "size": self.size, "crowd": self.crowd,
                "volunteers": self.volunteers, "style": self.style, "renderer_version": RENDERER_VERSION,
                "volunteer_model_version": volunteers.VOLUNTEER_MODEL_VERSION}


def check_settings(settings: SurveySettings) -> None:
    """Raise SurveyError for settings that cannot work, before anything is written."""
    if not isinstance(settings.n, int) or settings.n <= 0:
        raise SurveyError(f"--n must be a positive number of galaxies, got {settings.n}")
    if settings.size < MIN_SIZE or settings.size > MAX_SIZE:
        raise SurveyError(f"--size must be {MIN_SIZE}..{MAX_SIZE} px (smaller images cannot show spiral arms), "
                          f"got {settings.size}")
    if settings.seed < 0:
        raise SurveyError(f"--seed must be >= 0, got {settings.seed}")
    volunteers.get_crowd(settings.crowd)
    try:
        styles.parse(settings.style)
    except styles.StyleError as exc:
        raise SurveyError(f"--style: {exc}") from None
    if not 1 <= settings.volunteers <= volunteers.MAX_VOLUNTEERS:
        raise SurveyError(f"--volunteers must be 1..{volunteers.MAX_VOLUNTEERS}, got {settings.volunteers}")
    out = Path(settings.out)
    if out.exists() and not out.is_dir():
        raise SurveyError(f"--out {out} exists and is not a folder")
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SurveyError(f"--out {out}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SurveyError(f"--out {out}: cannot write in {probe} (permission denied)")


# --- names --------------------------------------------------------------------------------------------
def manga_id(seed: int, index: int) -> str:
    """Synthetic MaNGA-style id, unique per (seed, index): 'S<seed>-<index + 1, 6 digits>'."""
    return f"S{seed}-{index + 1:06d}"


def iau_name(ra: float, dec: float) -> str:
    """'SYN Jhhmmss.ss+ddmmss.s' from (ra, dec) [deg]: unmistakably synthetic."""
    h = ra / 15.0
    hh, mm = int(h), int((h * 60) % 60)
    ss = (h * 3600) % 60
    sign = "+" if dec >= 0 else "-"
    d = abs(dec)
    dd, dm = int(d), int((d * 60) % 60)
    ds = (d * 3600) % 60
    ra_text = f"{hh:02d}{mm:02d}{math.floor(ss * 100) / 100:05.2f}"
    return f"SYN J{ra_text}{sign}{dd:02d}{dm:02d}{math.floor(ds * 10) / 10:04.1f}"


def subject_id(seed: int, index: int) -> int:
    return 900_000_000 + (seed % 1000) * 100_000 + index % 100_000


# --- grids --------------------------------------------------------------------------------------------
def cutout_wcs(ra: float, dec: float, size: int, pixel_scale: float = colour.LEGACY_SURVEY_PIXEL_SCALE) -> WCS:
    """TAN WCS of a survey cutout as the Legacy Survey writes them: FITS row 1 = south, east left."""
    w = WCS(naxis=2)
    w.wcs.crpix = [size / 2 + 0.5, size / 2 + 0.5]
    w.wcs.crval = [float(ra), float(dec)]
    s = pixel_scale / 3600
    w.wcs.cd = np.array([[-s, 0.0], [0.0, s]])
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.cunit = ["deg", "deg"]
    return w


def truth_params(p: GalaxyParams, tasks: volunteers.Tasks, settings: SurveySettings, images: dict,
                 style: styles.Style | None = None, seeing: dict | None = None) -> dict:
    """The galaxy's true parameters, the same in both of its files. ``images``: image kind -> (grid,
    rendering); pixel quantities are given per image under ``images`` (lengths in px of that grid)."""
    scale = p.kpc_per_arcsec
    params = {
        "synthetic": True, "seed": settings.seed, "index": p.index,
        "renderer_version": RENDERER_VERSION, "volunteer_model_version": volunteers.VOLUNTEER_MODEL_VERSION,
        "crowd": settings.crowd, "morphology": p.morphology,
        "redshift": round(p.redshift, 6), "kpc_per_arcsec": round(scale, 6),
        "axis_ratio": round(p.axis_ratio, 4), "position_angle_deg": round(p.pa, 3),
        "inclination_deg": round(p.inclination, 3),
        "disk_scale_arcsec": round(p.disk_scale, 4), "disk_scale_kpc": round(p.disk_scale * scale, 4),
        "bulge_effective_radius_arcsec": round(p.bulge_re, 4), "bulge_sersic_n": round(p.bulge_n, 3),
        "barred": p.bar is not None, "arm_count": p.arms.m,
        "asked_spiral": tasks.spiral, "asked_bar": tasks.bar,
        "truth_rule": "component dominates the local light (docs/synthetic.md)",
        "images": {kind: {"pixel_scale_arcsec": round(grid.pixel_scale, 6), "psf_fwhm_arcsec": round(r.psf_fwhm, 4)}
                   for kind, (grid, r) in images.items()},
    }
    if style is not None and style.name != "classic":  # classic truth stays as it was written before styles
        params.update({"style": style.name, "renderer": style.engine, "bands": "".join(style.bands),
                       "arm_family": p.arms.family if p.arms.m else None, "ring": p.ring is not None,
                       "dust_lanes": 0 if p.dust is None else len(p.dust.lanes)})
        if p.colours:
            params["colours_g_r_r_z"] = {k: [round(c, 3) for c in v] for k, v in p.colours.items()}
        for kind, info in (seeing or {}).items():
            params["images"][kind].update(info)
    if p.arms.m:
        visible = sum(volunteers.visible_arm_extent(p, k) is not None for k in range(p.arms.m))
        pitch = p.arms.pitch
        if p.arms.pitch_slope:  # the pitch half-way (in ln r) along the arms, and its range
            ends = renderer.pitch_at(p, np.array([p.arms.start, max(p.arms.ends)]))
            pitch = float(renderer.pitch_at(p, np.sqrt(p.arms.start * max(p.arms.ends))))
            params["pitch_angle_range_deg"] = [round(float(x), 3) for x in ends]
        params.update({
            "visible_arm_count": visible, "pitch_angle_deg": round(pitch, 3),
            "winding": "counterclockwise" if p.arms.winding > 0 else "clockwise",
            "chirality": "Z" if p.arms.winding > 0 else "S",
            "arm_contrast": round(float(np.mean(p.arms.amplitudes)), 4),
            "arm_contrasts": [round(a, 4) for a in p.arms.amplitudes],
            "arm_width_arcsec": round(p.arms.width, 4),
        })
    if p.bar is not None:
        length_arcsec = None
        for kind, (grid, _) in images.items():
            length_px = 2 * volunteers.bar_box(p, grid)["half_length"]
            params["images"][kind]["bar_length_px"] = round(length_px, 3)
            length_arcsec = length_px * grid.pixel_scale
        ang = math.radians(p.bar.angle)
        east, north = renderer.disk_to_sky(p, math.cos(ang), math.sin(ang))
        params.update({
            "bar_length_arcsec": round(length_arcsec, 4),
            "bar_length_kpc": round(length_arcsec * scale, 4),
            "bar_length_deprojected_kpc": round(2 * p.bar.half_length * scale, 4),
            "bar_position_angle_deg": round(math.degrees(math.atan2(east, north)) % 180, 3),
            "bar_axis_ratio": round(p.bar.axis_ratio, 4),
        })
    return params


# --- one galaxy ---------------------------------------------------------------------------------------
@dataclass
class GalaxyOutput:
    index: int
    catalogue_row: dict
    crowd_record: dict
    morphology: str
    style: str = "classic"


def _conditions(rng, kind: str) -> renderer.Conditions:
    if kind == "gz3d":  # SDSS imaging under the GZ3D subject images
        return renderer.Conditions(psf_fwhm=float(rng.uniform(1.2, 1.7)), sky_sigma=renderer.SDSS, gain=1500.0)
    return renderer.Conditions(psf_fwhm=float(rng.uniform(0.95, 1.5)), sky_sigma=renderer.LEGACY, gain=4000.0)


def draw_ifu_hexagon(rgb: np.ndarray, grid: renderer.Grid, diameter_arcsec: float) -> None:
    """Burn the IFU footprint into the subject image as the GZ3D images show it (a magenta hexagon)."""
    from skimage.draw import line_aa

    radius = diameter_arcsec / 2
    angles = np.radians(np.arange(0, 420, 60) + 30)
    x, y = grid.to_pixels(radius * np.sin(angles), radius * np.cos(angles))
    colour = np.array([214, 40, 220], np.float32)
    h, w = rgb.shape[:2]
    for i in range(6):
        rr, cc, val = line_aa(int(round(y[i])), int(round(x[i])), int(round(y[i + 1])), int(round(x[i + 1])))
        ok = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        rr, cc, val = rr[ok], cc[ok], val[ok, None].astype(np.float32)
        rgb[rr, cc] = np.rint(rgb[rr, cc] * (1 - val) + colour * val).astype(np.uint8)


def truth_hdu_bytes(spiral: np.ndarray, bar: np.ndarray, params: dict) -> bytearray:
    """``truthfile.truth_hdus`` laid out as bytes (``fitsbytes``): TRUTH_MASKS (2, H, W) uint8 and the
    one-row TRUTH_PARAMS table of sorted-key JSON, the same bytes astropy writes for them."""
    masks = fitsbytes.image_hdu(np.stack([spiral, bar]).astype(np.uint8), fitsbytes.extname(truthfile.MASKS_EXTNAME))
    table = fitsbytes.table_hdu([("json", "A", [json.dumps(params, sort_keys=True)])], 1,
                                fitsbytes.extname(truthfile.PARAMS_EXTNAME))
    return masks + table


def _cutout_cards(wcs: WCS, name: str, bands: str = "grz",
                  pixel_scale: float = colour.LEGACY_SURVEY_PIXEL_SCALE) -> bytes:
    return fitsbytes.header_cards(wcs.to_header()) + b"".join([
        fitsbytes.card("BANDS", bands, "planes of the cube"),
        fitsbytes.card("PIXSCALE", pixel_scale, "arcsec / px"),
        fitsbytes.card("BUNIT", "nanomaggy"),
        fitsbytes.card("SYNTHET", True, "synthetic galaxy (evalsite), not an observation"),
        fitsbytes.card("OBJECT", name),
    ])


def gzip_bytes(data: bytes) -> bytes:
    """``data`` as a gzip member with a fixed header (mtime 0, no name, OS 'unknown'), so the bytes are
    the same for a given seed on any machine. Deflate with run-length matching only (``Z_RLE``): the
    GZ3D file is mostly runs of zero float64 pixels: ~20% less CPU than gzip level 1, 2% smaller."""
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, 8, zlib.Z_RLE)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", 0) + b"\x04\xff"  # XFL 4 = fastest, OS 255
    return header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def galaxy_params(settings: SurveySettings, index: int):
    """(style, cutout pixel scale, GalaxyParams, the style's random stream as the images continue it) of
    galaxy ``index``: its style, then its pixel scale, then the galaxy drawn to fit both grids, then (GalSim
    styles) its structural variety."""
    seed = settings.seed
    style = styles.style_for(settings.style, seed, index)
    style_rng = np.random.default_rng([seed, index, 5])  # pixel scale, structural variety, seeing
    pixel_scale = colour.LEGACY_SURVEY_PIXEL_SCALE
    if style.engine != "classic":
        lo, hi = style.pixel_scale
        pixel_scale = round(float(np.exp(style_rng.uniform(np.log(lo), np.log(hi)))), 4)
    p = draw_galaxy(np.random.default_rng([seed, index, 0]), seed=seed, index=index,
                    field_arcsec=settings.field_for(pixel_scale))
    if style.variety:
        vary_structure(p, style_rng)
    return style, pixel_scale, p, style_rng


def make_galaxy(settings: SurveySettings, index: int) -> GalaxyOutput:
    """Render, simulate and write one galaxy's two files. Depends only on (settings, index)."""
    seed, size = settings.seed, settings.size
    style, pixel_scale, p, style_rng = galaxy_params(settings, index)
    noise_rng = np.random.default_rng([seed, index, 1])
    crowd_names = list(volunteers.CROWDS)
    crowd_rng = np.random.default_rng([seed, index, 2, crowd_names.index(settings.crowd)])
    mid, name = manga_id(seed, index), iau_name(p.ra, p.dec)
    out = Path(settings.out)

    # the GZ3D subject image and the volunteers who drew on it
    header = gz3d.make_wcs_header(p.ra, p.dec, (size, size), settings.gz3d_pixel_scale)
    grid = renderer.Grid.from_wcs(WCS(header), (size, size), p.ra, p.dec)
    seeing = {}
    if style.engine == "classic":
        sub = renderer.render(p, grid, _conditions(noise_rng, "gz3d"), noise_rng)
    else:
        sub, seeing["gz3d_subject"] = _galsim_image(p, grid, style, style_rng, noise_rng, "gz3d")
    rgb = subject_rgb(sub.bands, style)
    draw_ifu_hexagon(rgb, grid, IFU_DIAMETERS[p.ifu_design])
    # tasks do not depend on the crowd: both crowds draw on the same galaxies for the same tasks
    tasks = volunteers.ask_tasks(p, np.random.default_rng([seed, index, 3]))
    crowd = volunteers.get_crowd(settings.crowd)
    spiral, bar = volunteers.draw_crowd(p, grid, tasks, crowd_rng, crowd=crowd, n_volunteers=settings.volunteers,
                                        id_base=index * 100)
    metadata = {
        "ra": p.ra, "dec": p.dec, "MANGAID": mid, "IAUNAME": name, "IFUDESIGNSIZE": p.ifu_design,
        "MANGA_TILEID": -1, "nsa_id": -1, "explorer_link": "", "GZ_total_classifications": tasks.gz_total,
        "GZ_bar_votes": tasks.gz_bar_votes, "GZ_spiral_votes": tasks.gz_spiral_votes, "sample": "synthetic",
    }

    # the survey cutout (FITS row order: south first, like the Legacy Survey's own cutouts)
    wcs = cutout_wcs(p.ra, p.dec, size, pixel_scale)
    cgrid = renderer.Grid.from_wcs(wcs, (size, size), p.ra, p.dec)
    if style.engine == "classic":
        cut = renderer.render(p, cgrid, _conditions(noise_rng, "cutout"), noise_rng)
    else:
        cut, seeing["survey_cutout"] = _galsim_image(p, cgrid, style, style_rng, noise_rng, "cutout")

    params = truth_params(p, tasks, settings, {"gz3d_subject": (grid, sub), "survey_cutout": (cgrid, cut)},
                          style=style, seeing=seeing)
    # every polygon is rasterised once: HDU 3 / 4 of the file and the volunteer counts of the statistics
    shape = (size, size)
    rasters = {"spiral": gz3d.rasterise_task(spiral, shape), "bar": gz3d.rasterise_task(bar, shape)}
    gz_path = out / "gz3d" / f"gz3d_{mid}_{p.ifu_design}_{subject_id(seed, index)}.fits.gz"
    gz_path.write_bytes(gzip_bytes(gz3d.gz3d_bytes(
        image=rgb, header=header, metadata=metadata, spiral=spiral, bar=bar, celestial_header=header,
        extra_hdus=[truth_hdu_bytes(sub.spiral, sub.bar, params)],
        counts=(rasters["spiral"].polygon_counts, rasters["bar"].polygon_counts))))
    cut_rel = f"{mid}.fits"
    cards = _cutout_cards(wcs, name, "".join(style.bands), pixel_scale)
    (out / "cutouts" / cut_rel).write_bytes(fitsbytes.image_hdu(cut.bands, cards, primary=True)
                                            + truth_hdu_bytes(cut.spiral, cut.bar, params))

    counts = {"spiral": rasters["spiral"].volunteer_counts if tasks.spiral else None,
              "bar": rasters["bar"].volunteer_counts if tasks.bar else None}
    record = crowdstats.galaxy_record(counts, settings.volunteers, {"spiral": sub.spiral, "bar": sub.bar},
                                      {"spiral": spiral, "bar": bar})
    row = {"name": name, "ra": f"{p.ra:.7f}", "dec": f"{p.dec:.7f}", "redshift": f"{p.redshift:.6f}",
           "pixel_scale": pixel_scale, "manga_id": mid, "file": cut_rel}
    return GalaxyOutput(index=index, catalogue_row=row, crowd_record=record, morphology=p.morphology,
                        style=style.name)


SUBJECT_DEPTH = (1.5, 3.5)  # sky noise of GalSim-style GZ3D subject images relative to the cutout reference


def _galsim_image(p: GalaxyParams, grid: renderer.Grid, style: styles.Style, style_rng, noise_rng, kind: str):
    """A GalSim-style image: the GZ3D subject with SDSS-like seeing and depth (1.5-3.5x the sky noise), the
    cutout with the style's ranges; the PSF FWHM is kept within 1.8-6 px of the grid. Returns the
    rendering and what the truth records about the seeing."""
    from evalcore.synthetic import galsim_renderer

    if kind == "gz3d":
        fwhm, depth, gain = (1.2, 1.7), SUBJECT_DEPTH, 1500.0
    else:
        fwhm, depth, gain = style.psf_fwhm, style.depth, 4000.0
    seeing = galsim_renderer.draw_seeing(style_rng, fwhm, depth, gain)
    clipped = float(np.clip(seeing.fwhm, 1.8 * grid.pixel_scale, 6 * grid.pixel_scale))
    if clipped != seeing.fwhm:
        seeing = dataclasses.replace(seeing, fwhm=round(clipped, 4))
    rendering = galsim_renderer.render(p, grid, style.bands, seeing, noise_rng)
    return rendering, {"psf": seeing.psf, "sky_depth": round(seeing.depth, 3), "bands": "".join(style.bands)}


def subject_rgb(bands: np.ndarray, style: styles.Style) -> np.ndarray:
    """The GZ3D subject image in the style's colour convention: the Legacy Survey g,r,z mapping, a
    Lupton et al. (2004) g,r,i composite as SDSS images are made, or grey from a single band."""
    if style.subject_rgb == "grey":
        return colour.mono_to_rgb(bands[0])
    if style.subject_rgb == "lupton-gri":
        return colour.gri_to_rgb(bands)
    return colour.grz_to_rgb(bands, bands=style.bands)


# --- the survey ---------------------------------------------------------------------------------------
_WORKER_SETTINGS: SurveySettings | None = None


def _init_worker(settings: SurveySettings) -> None:
    global _WORKER_SETTINGS
    _WORKER_SETTINGS = settings
    # one BLAS / OpenMP thread per process: the processes are the parallelism
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def _work(index: int) -> GalaxyOutput:
    return make_galaxy(_WORKER_SETTINGS, index)


def iter_galaxies(settings: SurveySettings, workers: int = 1) -> Iterator[GalaxyOutput]:
    """Make every galaxy, yielding results in index order; ``workers`` > 1 uses that many processes."""
    if workers <= 1:
        for index in range(settings.n):
            yield make_galaxy(settings, index)
        return
    # forkserver: children start from a clean single-threaded server, so a caller running threads (a web
    # server, a browser driver in tests) cannot deadlock them as a plain fork can.
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(settings,)) as pool:
        yield from pool.imap(_work, range(settings.n), chunksize=4)


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def make_survey(settings: SurveySettings, *, workers: int | None = None, progress=None) -> dict:
    """Write the whole survey into ``settings.out``; returns the summary also written to survey.json.

    ``progress``: a callable given the number of galaxies finished so far (e.g. a tqdm bar's update).
    """
    check_settings(settings)
    out = Path(settings.out)
    try:
        (out / "gz3d").mkdir(parents=True, exist_ok=True)
        (out / "cutouts").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SurveyError(f"--out {out}: cannot create the output folders ({exc.strerror}); "
                          "choose a folder you can write to") from None
    _scale_table()  # build the cosmology table once, before worker processes are forked
    tally = crowdstats.CrowdTally(settings.volunteers)
    morphologies: dict[str, int] = {}
    style_counts: dict[str, int] = {}
    with open(out / CATALOGUE_NAME, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CATALOGUE_COLUMNS)
        writer.writeheader()
        for result in iter_galaxies(settings, workers or default_workers()):
            writer.writerow(result.catalogue_row)
            tally.add(result.crowd_record)
            morphologies[result.morphology] = morphologies.get(result.morphology, 0) + 1
            style_counts[result.style] = style_counts.get(result.style, 0) + 1
            if progress:
                progress(1)
    summary = {"settings": settings.as_dict(), "crowd_statistics": tally.summary(),
               "gz3d_pixel_scale_arcsec": round(settings.gz3d_pixel_scale, 6),
               "cutout_pixel_scale_arcsec": (colour.LEGACY_SURVEY_PIXEL_SCALE if set(style_counts) == {"classic"}
                                             else "per galaxy: cutouts.csv"), "morphologies": morphologies,
               "styles": style_counts}
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2))
    return summary


def crowd_summary_lines(stats: dict) -> list[str]:
    """Human-readable lines of the crowd statistics (``CrowdTally.summary``)."""
    lines = [f"crowd consensus vs truth ({stats['volunteers_per_galaxy']} volunteers per galaxy):"]
    for s in crowdstats.STRUCTURES:
        st = stats[s]
        if not st["galaxies_scored"]:
            lines.append(f"  {s}: asked of {st['galaxies_asked']} galaxies, none with a true {s} to score")
            continue
        lines.append(
            f"  {s}: mean IoU {st['mean_iou_at_half']:.3f} at fraction >= 0.5, "
            f"best {st['mean_iou_at_best_threshold']:.3f} at >= {st['best_threshold']:.3f} "
            f"({st['galaxies_scored']} galaxies scored of {st['galaxies_asked']}"
            f" asked; {100 * st['blank_drawing_fraction']:.0f}% blank drawings; median max fraction "
            f"{st['median_max_fraction']})")
    return lines
