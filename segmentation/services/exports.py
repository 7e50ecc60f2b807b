"""Data products researchers take home: one FITS file per galaxy with its masks, and a measurement catalogue.

Per galaxy (``export_galaxy``): the primary HDU holds the image (the imported band data when there is any,
else the RGB rendering as a (3, H, W) cube) with the image's celestial WCS; one ImageHDU per current mask
on that image, EXTNAME ``<SOURCE>_<STRUCTURE>`` (e.g. ``MODEL_SPIRAL``; EXTVER counts several producers of
one kind), float32 fractions in [0, 1] on the same grid and the same WCS, and the mask's provenance in its
header. Array row 0 is FITS row 1, so a pixel (x, y) of a mask and of the image is the same sky position.

The catalogue (``export_selection``) has one row per exported mask: identifiers, the mask's provenance and
every measurement with its uncertainty (``segmentation.services.measurements``), as CSV (written row by row) and as
a FITS table (a fixed-width array of the exported rows, 1.3 kB each). Galaxies are read with
``.iterator()`` and one file is written at a time, so a survey-sized selection fits in memory.
"""
from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalcore.formats import coords
from evalcore.measure import MEASUREMENT_CODE_VERSION
from segmentation.models import Galaxy, Image, Mask, MaskMeasurement
from segmentation.selectors.galaxies import GalaxySelection, selected_queryset

# Preferred image when a galaxy has several with masks (the GZ3D grid is where volunteers drew).
IMAGE_PREFERENCE = (Image.Kind.GZ3D_SUBJECT, Image.Kind.SURVEY_CUTOUT, Image.Kind.OTHER)

# Catalogue columns: (name, numpy dtype for the FITS table). Strings are UTF-8 bytes, cut to the width.
IDENTITY_COLUMNS = [
    ("galaxy", "S100"), ("manga_id", "S30"), ("nsa_id", "i8"), ("sdss_objid", "S30"), ("iau_name", "S40"),
    ("ra", "f8"), ("dec", "f8"), ("redshift", "f8"), ("synthetic", "?"),
    ("fits_file", "S120"), ("extname", "S30"), ("extver", "i2"), ("image_kind", "S20"), ("pixel_scale", "f8"),
    ("structure", "S10"), ("producer_kind", "S20"), ("producer_name", "S100"), ("producer_version", "S64"),
    ("producer_code_version", "S64"), ("producer_parameters_hash", "S64"), ("mask_id", "i8"),
    ("mask_state", "S10"), ("mask_content_hash", "S64"), ("n_volunteers", "i4"),
    ("measurement_code_version", "S32"), ("measured", "S5"), ("reason", "S200"),
    ("disk_axis_ratio", "f8"), ("disk_position_angle", "f8"), ("disk_orientation_source", "S10"),
]
BAR_COLUMNS = [
    "length_px", "length_px_err", "length_arcsec", "length_arcsec_err", "length_kpc", "length_kpc_err",
    "deprojected_length_px", "deprojected_length_px_err", "deprojected_length_arcsec",
    "deprojected_length_arcsec_err", "deprojected_length_kpc", "deprojected_length_kpc_err",
    "width_px", "width_px_err", "width_arcsec", "width_kpc", "position_angle", "position_angle_err",
    "axis_ratio", "kpc_per_arcsec",
    "profile_length_px", "profile_length_px_err", "profile_length_arcsec", "profile_length_arcsec_err",
    "profile_length_kpc", "profile_length_kpc_err", "profile_deprojected_length_px",
    "profile_deprojected_length_px_err", "profile_deprojected_length_kpc", "profile_deprojected_length_kpc_err",
    "profile_position_angle",
]
SPIRAL_COLUMNS = [("n_arms", "i2"), ("pitch", "f8"), ("pitch_abs", "f8"), ("pitch_err", "f8"),
                  ("chirality", "S1"), ("chirality_agreement", "f8")]
# why a measured bar has no half-maximum length (an unmeasured one gives its reason in ``reason``)
PROFILE_REASON_COLUMN = ("profile_reason", "S200")
CATALOGUE_COLUMNS = IDENTITY_COLUMNS + [(c, "f8") for c in BAR_COLUMNS] + [PROFILE_REASON_COLUMN] + SPIRAL_COLUMNS
UNITS = {"ra": "deg", "dec": "deg", "pixel_scale": "arcsec/pix", "disk_position_angle": "deg",
         "position_angle": "deg", "position_angle_err": "deg", "profile_position_angle": "deg", "pitch": "deg",
         "pitch_abs": "deg",
         "pitch_err": "deg", "kpc_per_arcsec": "kpc/arcsec"}
for _c in BAR_COLUMNS:
    for _u, _fits_unit in (("px", "pix"), ("arcsec", "arcsec"), ("kpc", "kpc")):
        if f"_{_u}" in _c:
            UNITS.setdefault(_c, _fits_unit)
MISSING_INT = -1  # integer columns have no NaN: -1 means unknown (n_volunteers, nsa_id, n_arms)


def safe_filename(name: str) -> str:
    """A file name for a galaxy name: letters, digits, '.', '_', '+', '-' kept; the rest become '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]", "_", name).strip("._") or "galaxy"
    return cleaned[:150]


def extname(kind: str, structure: str) -> str:
    return f"{kind}_{structure}".upper()


def choose_image(galaxy: Galaxy, image_kind: str | None = None) -> Image | None:
    """The image whose masks go in the galaxy's file: ``image_kind`` if given, else the image with current
    masks first in ``IMAGE_PREFERENCE`` (the one with most masks when kinds tie)."""
    images = list(galaxy.images.all())
    if image_kind:
        return next((i for i in images if i.kind == image_kind), None)
    counts = {i.pk: i.masks.filter(is_current=True).count() for i in images}
    with_masks = [i for i in images if counts[i.pk]]
    pool = with_masks or images
    if not pool:
        return None
    order = {k: n for n, k in enumerate(IMAGE_PREFERENCE)}
    return min(pool, key=lambda i: (order.get(i.kind, 99), -counts[i.pk], i.pk))


# --- one galaxy -----------------------------------------------------------------------------------------
def _wcs_header(image: Image):
    from astropy.io import fits

    wcs = coords.wcs_from_text(image.wcs_header)
    return wcs.to_header() if wcs is not None else fits.Header()


def _card(header, key: str, value, comment: str = "") -> None:
    """Set a header card, leaving out the comment where it would not fit the 80-character card."""
    from astropy.io import fits

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits.Card(key, value, comment).image  # noqa: B018 - formatting is what warns of a cut comment
    header[key] = value if caught and comment else (value, comment)


def _primary(galaxy: Galaxy, image: Image):
    from astropy.io import fits

    from segmentation.selectors.images import image_bands, image_rgb

    header = _wcs_header(image)
    bands = image_bands(image)
    if bands is not None:
        data, content = bands.astype(np.float32), "imported band data"
    else:
        data, content = np.ascontiguousarray(np.moveaxis(image_rgb(image), 2, 0)), "RGB rendering (R, G, B planes)"
    hdu = fits.PrimaryHDU(data=data, header=header)
    h = hdu.header
    _card(h, "GALAXY", galaxy.name, "evalsite galaxy name")
    for key, value, comment in (("MANGAID", galaxy.manga_id, "MaNGA id"), ("NSAID", galaxy.nsa_id, "NSA id"),
                                ("SDSSOBJ", galaxy.sdss_objid, "SDSS objid"), ("IAUNAME", galaxy.iau_name, ""),
                                ("OBJRA", galaxy.ra, "[deg] galaxy RA (ICRS)"),
                                ("OBJDEC", galaxy.dec, "[deg] galaxy Dec (ICRS)"),
                                ("REDSHIFT", galaxy.redshift, ""), ("DISKBA", galaxy.axis_ratio, "disk b/a"),
                                ("DISKPA", galaxy.position_angle, "[deg] disk major axis E of N")):
        if value not in (None, ""):
            _card(h, key, value, comment)
    _card(h, "SYNTHET", bool(galaxy.synthetic), "synthetic galaxy")
    _card(h, "IMGKIND", image.kind, "evalsite image kind")
    _card(h, "CONTENT", content, "what the primary array holds")
    if image.pixel_scale:
        _card(h, "PIXSCALE", image.pixel_scale, "[arcsec/px]")
    if image.bands:
        _card(h, "BANDS", image.bands, "")
    _card(h, "IMGHASH", image.content_hash, "sha256 of stored RGB pixels")
    _card(h, "ROWORDER", "row 0 = north" if image.wcs_header else "as stored", "array row 0 = FITS row 1")
    h["COMMENT"] = "Masks: one extension per (source, structure), float32 fractions on this grid."
    return hdu


# Measurement headline values copied to each mask extension's header: (keyword, attribute, unit).
HEADER_VALUES = {
    "bar": [("BARLKPC", "length_kpc", "kpc"), ("BARLKERR", "length_kpc_err", "kpc"),
            ("BARLDKPC", "deprojected_length_kpc", "kpc"), ("BARLARCS", "length_arcsec", "arcsec"),
            ("BARLPX", "length_px", "px"), ("BARPA", "position_angle", "deg")],
    "spiral": [("NARMS", "n_arms", ""), ("PITCHABS", "pitch_abs", "deg"), ("PITCHERR", "pitch_err", "deg"),
               ("CHIRAL", "chirality", "S or Z")],
}


def _mask_hdu(mask: Mask, image: Image, extver: int, measurement: MaskMeasurement | None):
    from astropy.io import fits

    header = _wcs_header(image)
    data = mask.fractions()
    hdu = fits.ImageHDU(data=None if data is None else data.astype(np.float32), header=header)
    p = mask.producer
    h = hdu.header
    h["EXTNAME"] = extname(p.kind, mask.structure)
    h["EXTVER"] = extver
    _card(h, "STRUCT", mask.structure, "bar or spiral")
    _card(h, "PRODKIND", p.kind, "volunteers/model/sparcfire/truth")
    _card(h, "PRODNAME", p.name, "producer name")
    _card(h, "PRODVER", p.version, "producer version")
    _card(h, "PRODCODE", p.code_version, "producer code version")
    _card(h, "PARHASH", p.parameters_hash, "sha256 of producer parameters")
    _card(h, "MASKID", mask.pk, "evalsite mask id")
    _card(h, "MASKHASH", mask.content_hash, "sha256 of the stored mask")
    _card(h, "STATE", mask.state, "not_asked / empty / marked")
    _card(h, "DENOM", mask.denominator, "stored as numerators / DENOM")
    if mask.n_volunteers is not None:
        _card(h, "NVOLUNT", mask.n_volunteers, "volunteers who drew")
    _card(h, "CREATED", mask.created_at.isoformat(timespec="seconds"), "when the mask was stored")
    _card(h, "BUNIT", "fraction", "fraction of votes or probability")
    if measurement is not None:
        r = measurement.result
        _card(h, "MEASVER", measurement.code_version, "measurement code version")
        _card(h, "MEASURED", bool(measurement.measured), "a value came out")
        if not measurement.measured:
            _card(h, "MEASWHY", r.get("reason") or "not measured", "why there is no value")
        for key, attr, unit in HEADER_VALUES[measurement.kind]:
            if measurement.measured and r.get(attr) is not None:
                _card(h, key, r[attr], f"[{unit}] {attr}" if unit else attr)
    return hdu


@dataclass
class GalaxyExport:
    path: Path | None
    rows: list[dict] = field(default_factory=list)  # catalogue rows, one per mask
    reason: str | None = None  # why nothing was written


def export_galaxy(*, galaxy: Galaxy, out_dir, filename: str | None = None, image_kind: str | None = None,
                  sources: Iterable[str] | None = None) -> GalaxyExport:
    """Write ``out_dir/<filename or galaxy name>.fits`` (see the module docstring) and return its
    catalogue rows. Files are written to a temporary name and renamed, so a crash leaves no half file."""
    from astropy.io import fits

    image = choose_image(galaxy, image_kind)
    if image is None:
        return GalaxyExport(None, reason=f"no {image_kind} image" if image_kind else "no image")
    masks = (image.masks.filter(is_current=True).select_related("producer")
             .order_by("producer__kind", "structure", "producer__name", "producer__version", "id"))
    if sources:
        masks = masks.filter(producer__kind__in=list(sources))
    masks = list(masks)
    if not masks:
        return GalaxyExport(None, reason=f"no current mask on its {image.kind} image")
    meas = {m.mask_id: m for m in MaskMeasurement.objects.filter(
        mask__in=masks, code_version=MEASUREMENT_CODE_VERSION)}
    out_dir = Path(out_dir)
    path = out_dir / (filename or f"{safe_filename(galaxy.name)}.fits")
    hdus = [_primary(galaxy, image)]
    rows, versions = [], {}
    for mask in masks:
        name = extname(mask.producer.kind, mask.structure)
        versions[name] = versions.get(name, 0) + 1
        m = meas.get(mask.pk)
        m = m if m is not None and m.kind == mask.structure else None
        hdus.append(_mask_hdu(mask, image, versions[name], m))
        rows.append(catalogue_row(galaxy=galaxy, image=image, mask=mask, measurement=m, fits_file=path.name,
                                  extname=name, extver=versions[name]))
    tmp = path.with_name(path.name + ".part")
    fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="exception")
    os.replace(tmp, path)
    return GalaxyExport(path, rows)


def catalogue_row(*, galaxy: Galaxy, image: Image, mask: Mask, measurement: MaskMeasurement | None,
                  fits_file: str = "", extname: str = "", extver: int = 1) -> dict:
    """One catalogue row (keys = ``CATALOGUE_COLUMNS``; None where unknown)."""
    p = mask.producer
    row = {c: None for c, _ in CATALOGUE_COLUMNS}
    row.update(
        galaxy=galaxy.name, manga_id=galaxy.manga_id, nsa_id=galaxy.nsa_id, sdss_objid=galaxy.sdss_objid,
        iau_name=galaxy.iau_name, ra=galaxy.ra, dec=galaxy.dec, redshift=galaxy.redshift,
        synthetic=bool(galaxy.synthetic), fits_file=fits_file, extname=extname, extver=extver,
        image_kind=image.kind, pixel_scale=image.pixel_scale, structure=mask.structure, producer_kind=p.kind,
        producer_name=p.name, producer_version=p.version, producer_code_version=p.code_version,
        producer_parameters_hash=p.parameters_hash, mask_id=mask.pk, mask_state=mask.state,
        mask_content_hash=mask.content_hash, n_volunteers=mask.n_volunteers,
    )
    if mask.state == Mask.State.NOT_ASKED:
        row["reason"] = f"{mask.structure} not asked of this source"
        return row
    if measurement is None:
        row["reason"] = f"not measured by {MEASUREMENT_CODE_VERSION} (run manage.py measure_masks)"
        return row
    r = measurement.result
    row.update(measurement_code_version=measurement.code_version, measured=str(bool(measurement.measured)),
               reason=r.get("reason"), disk_axis_ratio=r.get("disk_axis_ratio"),
               disk_position_angle=r.get("disk_position_angle"),
               disk_orientation_source=r.get("disk_orientation_source"))
    names = BAR_COLUMNS if measurement.kind == "bar" else [c for c, _ in SPIRAL_COLUMNS]
    for c in names:
        row[c] = r.get(c) if measurement.measured else None  # never a length without a measured bar
    if measurement.kind == "bar" and measurement.measured:
        row["profile_reason"] = r.get("profile_reason")
    return row


# --- a selection ----------------------------------------------------------------------------------------
@dataclass
class ExportSummary:
    files: int = 0
    rows: int = 0
    skipped: list[dict] = field(default_factory=list)  # {"galaxy", "reason"}
    catalogue_csv: Path | None = None
    catalogue_fits: Path | None = None

    def lines(self) -> list[str]:
        out = [f"wrote {self.files} FITS files and a catalogue of {self.rows} masks: "
               f"{self.catalogue_csv}, {self.catalogue_fits}"]
        out += [f"skipped {s['galaxy']}: {s['reason']}" for s in self.skipped]
        return out


def galaxies_selection(*, synthetic: str = "any", names: Iterable[str] | None = None):
    """Galaxies to export (the one galaxy selection), in name order. Unknown names raise ValueError."""
    return selected_queryset(GalaxySelection(synthetic=synthetic, names=tuple(names or ()))).order_by("name")


def export_selection(*, galaxies, out_dir, image_kind: str | None = None, sources: Iterable[str] | None = None,
                     catalogue_name: str = "measurements",
                     progress: Callable[[int], None] | None = None) -> ExportSummary:
    """Export every galaxy of the ``galaxies`` queryset to ``out_dir`` (one FITS file each) and write the
    catalogue ``out_dir/<catalogue_name>.csv`` and ``.fits``. ``progress`` is called with 1 per galaxy."""
    from astropy.io import fits
    from astropy.table import Table

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary(catalogue_csv=out_dir / f"{catalogue_name}.csv",
                            catalogue_fits=out_dir / f"{catalogue_name}.fits")
    n_max = Mask.objects.filter(galaxy__in=galaxies, is_current=True).count()
    table = np.zeros(n_max, dtype=[(c, t) for c, t in CATALOGUE_COLUMNS])
    used = set()
    with summary.catalogue_csv.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([c for c, _ in CATALOGUE_COLUMNS])
        for galaxy in galaxies.iterator(chunk_size=200):
            filename = f"{safe_filename(galaxy.name)}.fits"
            if filename.lower() in used:  # two names that clean to the same file name
                filename = f"{safe_filename(galaxy.name)}_{galaxy.pk}.fits"
            result = export_galaxy(galaxy=galaxy, out_dir=out_dir, filename=filename, image_kind=image_kind,
                                   sources=sources)
            if result.path is None:
                summary.skipped.append({"galaxy": galaxy.name, "reason": result.reason})
            else:
                used.add(filename.lower())
                summary.files += 1
                for row in result.rows:
                    writer.writerow(["" if row[c] is None else row[c] for c, _ in CATALOGUE_COLUMNS])
                    if summary.rows >= len(table):  # masks added while exporting
                        table = np.resize(table, max(16, 2 * len(table)))
                    table[summary.rows] = _fixed(row)
                    summary.rows += 1
            if progress:
                progress(1)
    t = Table(table[:summary.rows])
    for c, unit in UNITS.items():
        t[c].unit = unit
    t.meta["EXTNAME"] = "MEASUREMENTS"
    t.meta["MEASVER"] = MEASUREMENT_CODE_VERSION
    t.meta["COMMENTS"] = ["NaN = no value; -1 in integer columns = unknown; one row per exported mask"]
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(t)])
    tmp = summary.catalogue_fits.with_name(summary.catalogue_fits.name + ".part")
    hdul.writeto(tmp, overwrite=True)
    os.replace(tmp, summary.catalogue_fits)
    return summary


def _fixed(row: dict) -> tuple:
    out = []
    for c, t in CATALOGUE_COLUMNS:
        v = row[c]
        if t.startswith("S"):
            # cut at the width without splitting a UTF-8 character
            out.append(("" if v is None else str(v)).encode()[: int(t[1:])].decode(errors="ignore").encode())
        elif t == "f8":
            out.append(np.nan if v is None else float(v))
        elif t == "?":
            out.append(bool(v))
        else:
            out.append(MISSING_INT if v is None else int(v))
    return tuple(out)
