"""Plain images (FITS, PNG, JPEG) listed in a catalogue -> galaxies and their images.

The catalogue (CSV or FITS table) has one row per image: ``name, ra, dec`` and optionally ``redshift,
pixel_scale, manga_id, iau_name, nsa_id, file``. Without ``file`` the image is the one file under the
folder whose name without suffix is the row's name. Each row is read, checked and stored in its own
transaction; a bad row or file is skipped with its reason and nothing else changes.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from tqdm import tqdm

from evalcore.formats import coords, imagefiles
from evalcore.sky import catalogue as cat
from segmentation.models import Image, ImportBatch
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.imports.summary import ImportSummary
from segmentation.services.truth import truth_store

REQUIRED_COLUMNS = ("name", "ra", "dec")
OPTIONAL_COLUMNS = ("redshift", "pixel_scale", "manga_id", "iau_name", "nsa_id", "file")
IMAGE_ID_FIELDS = ("manga_id", "nsa_id", "iau_name")
PIXEL_SCALE_TOLERANCE = 0.02  # relative disagreement between catalogue and WCS worth a warning


@dataclass
class ImageRow:
    """One catalogue row: where it is (``label``), the galaxy, and the file if named."""

    label: str
    name: str
    ra: float
    dec: float
    redshift: float | None = None
    pixel_scale: float | None = None  # arcsec / px
    ids: dict = field(default_factory=dict)
    file: str | None = None


class RowError(ValueError):
    """One row that cannot be imported; the message says why."""


def rows_from_table(table: cat.Table, summary: ImportSummary) -> list[ImageRow]:
    """Catalogue rows as ImageRows; rows with bad values are recorded as failures in ``summary``.
    Raises CatalogueError when a required column is missing."""
    missing = [c for c in REQUIRED_COLUMNS if not table.has(c)]
    if missing:
        raise cat.CatalogueError(
            f"{table.source}: missing column(s) {', '.join(missing)} (needs {', '.join(REQUIRED_COLUMNS)}; "
            f"has {', '.join(table.columns)})"
        )
    cols = {c: table.find(c) for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if table.has(c)}
    rows, seen = [], {}
    for i in range(table.n_rows):
        cell = {c: table.columns[col][i] for c, col in cols.items()}
        label = f"catalogue row {i + 1}" + (f" ({cell['name']})" if cell.get("name") else "")
        try:
            name = cat.check_identifier("name", cell["name"])
            if not name:
                raise RowError("no name")
            if name in seen:
                raise RowError(f"name {name!r} repeats catalogue row {seen[name]}")
            ra, dec = cat.check_value("ra", cell["ra"]), cat.check_value("dec", cell["dec"])
            if ra is None or dec is None:
                raise RowError("no ra/dec")
            row = ImageRow(
                label=label, name=name, ra=ra, dec=dec,
                redshift=cat.check_value("redshift", cell.get("redshift")),
                pixel_scale=cat.check_value("pixel_scale", cell.get("pixel_scale")),
                ids={f: cat.check_identifier(f, cell.get(f)) for f in IMAGE_ID_FIELDS},
                file=cat.check_identifier("name", cell.get("file")),
            )
        except ValueError as exc:
            summary.fail(label, str(exc))
            continue
        seen[name] = i + 1
        rows.append(row)
    return rows


# --- finding files ----------------------------------------------------------------------------------
class FileIndex:
    """The image files under a folder, found by their name without suffix."""

    def __init__(self, directory: Path):
        self.root = directory.resolve()
        self.by_stem: dict[str, list[Path]] = {}
        for path in sorted(self.root.rglob("*")):
            stem = imagefiles.strip_image_suffix(path.name)
            if stem is not None and path.is_file():
                self.by_stem.setdefault(stem, []).append(path)
        self.used: set[Path] = set()

    def inside(self, relative: str) -> Path:
        """The file a catalogue names, refusing paths that leave the folder."""
        if Path(relative).is_absolute():
            raise RowError(f"file {relative!r} is an absolute path; give it relative to the image folder")
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise RowError(f"file {relative!r} is outside the image folder")
        if not path.is_file():
            raise RowError(f"file {relative!r} does not exist in {self.root}")
        return path

    def for_row(self, row: ImageRow) -> Path:
        if row.file:
            self.used.add(Path(os.path.normpath(self.root / row.file)))  # asked for, even if refused below
            path = self.inside(row.file)
        else:
            hits = self.by_stem.get(row.name) or [p for s, ps in self.by_stem.items() if s.lower() == row.name.lower()
                                                   for p in ps]
            if not hits:
                raise RowError(f"no image file named {row.name}.fits/.png/.jpg in {self.root} (or give a file column)")
            if len(hits) > 1:
                names = ", ".join(str(p.relative_to(self.root)) for p in hits)
                raise RowError(f"several files match {row.name!r}: {names}; name one in the file column")
            path = hits[0]
            self.used.add(path)
            if not path.resolve().is_relative_to(self.root):
                raise RowError(f"{path.name} links outside the image folder")
        self.used.add(path)
        return path

    def unused(self) -> list[Path]:
        return [p for ps in self.by_stem.values() for p in ps if p not in self.used]


# --- the import -------------------------------------------------------------------------------------
def _sky_wcs(data: imagefiles.ImageData, row: ImageRow, summary: ImportSummary):
    """(wcs, pixel scale arcsec/px) for the image: from the file, else built from the catalogue."""
    if data.wcs is not None:
        scale = coords.pixel_scale_arcsec(data.wcs)
        if row.pixel_scale and abs(scale - row.pixel_scale) > PIXEL_SCALE_TOLERANCE * row.pixel_scale:
            summary.warn(row.label, f"pixel_scale {row.pixel_scale} arcsec/px in the catalogue, "
                                    f"{scale:.4g} in the FITS WCS; the WCS is used")
        height, width = data.shape
        sky = data.wcs.pixel_to_world_values((width - 1) / 2, (height - 1) / 2)
        offset = _separation_arcsec(row.ra, row.dec, float(sky[0]), float(sky[1]))
        half_size = max(height, width) * scale / 2
        if offset > half_size:
            summary.warn(row.label, f"catalogue position is {offset:.0f} arcsec from the image centre, "
                                    f"outside the {2 * half_size:.0f} arcsec image; wrong file?")
        return data.wcs, scale
    if row.pixel_scale:
        return coords.north_up_wcs(row.ra, row.dec, data.shape, row.pixel_scale), row.pixel_scale
    summary.count("images without WCS")
    return None, None


def _separation_arcsec(ra1, dec1, ra2, dec2) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c)))) * 3600


def _store_row(row: ImageRow, data: imagefiles.ImageData, *, kind: str, batch, done: dict,
               summary: ImportSummary) -> str:
    wcs, scale = _sky_wcs(data, row, summary)
    with transaction.atomic():
        galaxy, created = galaxy_upsert(name=row.name, match=row.ids, batch=batch)
        if galaxy.pk in done:
            raise RowError(f"galaxy {galaxy.name} already got its {kind} image from {done[galaxy.pk]}")
        _fill_missing(galaxy, row, summary)
        image, status = image_store(
            galaxy=galaxy, kind=kind, rgb=data.rgb, wcs_header=coords.wcs_to_text(wcs), pixel_scale=scale,
            bands=data.bands, raw_fits=data.raw_fits, batch=batch,
        )
        if data.truth is not None:
            stored = truth_store(galaxy=galaxy, image=image, truth=data.truth, batch=batch)
            if status == "unchanged" and stored.changed:
                status = "updated"
    done[galaxy.pk] = row.label
    return "created" if created else status


def _fill_missing(galaxy, row: ImageRow, summary: ImportSummary) -> None:
    """Position and redshift fill empty fields only: an image catalogue does not overrule the source
    that made the galaxy (differences are reported)."""
    changed = []
    for fld in ("ra", "dec", "redshift"):
        value, stored = getattr(row, fld), getattr(galaxy, fld)
        if value is None:
            continue
        if stored is None:
            setattr(galaxy, fld, value)
            changed.append(fld)
    if galaxy.ra is not None and galaxy.dec is not None and "ra" not in changed:
        offset = _separation_arcsec(row.ra, row.dec, galaxy.ra, galaxy.dec)
        if offset > 1.0:
            summary.warn(row.label, f"catalogue position is {offset:.1f} arcsec from the stored position of "
                                    f"{galaxy.name}; the stored one is kept")
    if row.redshift is not None and galaxy.redshift is not None and "redshift" not in changed \
            and abs(galaxy.redshift - row.redshift) > 1e-6:
        summary.warn(row.label, f"redshift {row.redshift} differs from the stored {galaxy.redshift}; kept")
    if changed:
        galaxy.save(update_fields=[*changed, "updated_at"])


def import_images(*, directory, rows: list[ImageRow], kind: str = Image.Kind.SURVEY_CUTOUT,
                  batch: ImportBatch | None = None, summary: ImportSummary | None = None,
                  progress: bool = True, report_unused: bool = True) -> ImportSummary:
    """Import the image of every row from ``directory``; one transaction per galaxy. Image files in the
    folder that no row uses are listed as skipped (unless ``report_unused`` is off)."""
    summary = summary or ImportSummary()
    directory = Path(directory)
    if not directory.is_dir():
        raise cat.CatalogueError(f"{directory} is not a folder")
    if kind not in Image.Kind.values:
        raise cat.CatalogueError(f"unknown image kind {kind!r}; one of {', '.join(Image.Kind.values)}")
    index = FileIndex(directory)
    done: dict[int, str] = {}
    limits = {"max_pixels": settings.EVALSITE_MAX_IMAGE_PIXELS, "max_bytes": settings.EVALSITE_MAX_FILE_BYTES}
    for row in tqdm(rows, desc="images", unit="image", disable=not progress):
        where = row.label
        try:
            path = index.for_row(row)
            where = f"{row.label}: {path.relative_to(index.root)}"
            data = imagefiles.read_image(path, **limits)
            status = _store_row(row, data, kind=kind, batch=batch, done=done, summary=summary)
        except (RowError, imagefiles.ImageFileError, ValueError, IntegrityError) as exc:
            summary.fail(where, str(exc))
            continue
        if status == "created":
            summary.imported += 1
        elif status == "updated":
            summary.updated += 1
        else:
            summary.unchanged += 1
    for path in index.unused() if report_unused else []:
        summary.skipped += 1
        summary.warn(str(path.relative_to(index.root)), "image file not in the catalogue; skipped")
    return summary


def read_image_catalogue(*, directory, catalogue_path) -> tuple[list[ImageRow], ImportSummary]:
    """The catalogue's rows (bad rows already counted as failures in the summary), after checking that
    ``directory`` is a folder. Raises CatalogueError for an unusable catalogue or folder."""
    if not Path(directory).is_dir():
        raise cat.CatalogueError(f"{directory} is not a folder; give the folder that holds the image files")
    summary = ImportSummary()
    table = cat.read_table(catalogue_path, max_bytes=settings.EVALSITE_MAX_FILE_BYTES)
    return rows_from_table(table, summary), summary


def import_image_folder(*, directory, catalogue_path, kind: str = Image.Kind.SURVEY_CUTOUT,
                        batch: ImportBatch | None = None, progress: bool = True) -> ImportSummary:
    """Read the catalogue file, then ``import_images``. Raises CatalogueError for an unusable catalogue."""
    rows, summary = read_image_catalogue(directory=directory, catalogue_path=catalogue_path)
    return import_images(directory=directory, rows=rows, kind=kind, batch=batch, summary=summary, progress=progress)
