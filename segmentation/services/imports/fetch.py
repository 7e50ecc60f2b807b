"""Fetch survey files from the internet, then import them: GZ3D files and Legacy Survey cutouts.

Downloads go through ``evalcore.sky.downloads`` (retries, resume, size/checksum/FITS checks) into an
output folder that doubles as a cache: a file already there and complete is not fetched again. GZ3D
files are then imported with ``segmentation.services.imports.gz3d.import_gz3d``; cutouts with
``segmentation.services.imports.images.import_images`` on a catalogue built from the galaxies' ra/dec.

Base URLs: the command option, else the setting or environment variable ``EVALSITE_GZ3D_BASE_URL`` /
``EVALSITE_CUTOUT_URL``, else the public default in ``evalcore.sky.downloads``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from tqdm import tqdm

from evalcore.formats import gz3d
from evalcore.sky import downloads
from segmentation.models import Galaxy, Image, ImportBatch
from segmentation.services.imports.batches import batch_finish, batch_start
from segmentation.services.imports.images import ImageRow, import_images
from segmentation.services.imports.summary import ImportSummary


def configured_url(option: str | None, name: str, default: str) -> str:
    """The base URL to use: the command option, else setting/environment ``name``, else ``default``."""
    return option or getattr(settings, name, "") or os.environ.get(name, "") or default


def default_download_dir(what: str) -> Path:
    return Path(settings.VAR_DIR) / "downloads" / what


@dataclass
class Download:
    label: str  # what the user asked for (a name, a galaxy)
    url: str
    dest: Path
    checksum: str | None = None


@dataclass
class FetchOutcome:
    downloads: ImportSummary  # per file: downloaded / resumed / already complete / failed
    files: list[Path] = field(default_factory=list)  # complete files, in request order
    imported: ImportSummary | None = None  # the import's own summary, when it ran
    batch: ImportBatch | None = None


def fetch_all(jobs: list[Download], *, retries: int = 4, backoff: float = 1.0, timeout: float = 60.0,
              progress: bool = True, verify=downloads.verify_fits, summary: ImportSummary | None = None
              ) -> tuple[ImportSummary, list[tuple[Download, Path]]]:
    """Download every job (sequentially, one HTTP session). Failures are recorded, never raised."""
    summary = summary or ImportSummary()
    done = []
    session = downloads.make_session()
    files_bar = tqdm(jobs, desc="files", unit="file", disable=not progress)
    bytes_bar = tqdm(desc="bytes", unit="B", unit_scale=True, leave=False, position=1, disable=not progress)
    try:
        for job in files_bar:
            try:
                result = downloads.download(
                    job.url, job.dest, session=session, retries=retries, backoff=backoff, timeout=timeout,
                    checksum=job.checksum, verify=verify, max_bytes=settings.EVALSITE_MAX_FILE_BYTES,
                    on_bytes=bytes_bar.update)
            except downloads.DownloadError as exc:
                summary.fail(job.label, str(exc))
                continue
            summary.count({"skipped": "already complete"}.get(result.status, result.status))
            if result.attempts > 1:
                summary.count("retried downloads")
            done.append((job, result.path))
    finally:
        bytes_bar.close()
        files_bar.close()
        session.close()
    return summary, done


# --- GZ3D -------------------------------------------------------------------------------------------
def gz3d_requests(names: list[str], metadata_path=None, all_from_metadata: bool = False
                  ) -> tuple[list[str], list[tuple[str, str]]]:
    """Release file names for ``names`` (file names, or MaNGA ids looked up in the metadata table) or for
    every row of the metadata table. Returns (file names, [(name, reason)] for names not understood)."""
    metadata = gz3d.read_gz3d_metadata(metadata_path) if metadata_path else {}
    files, problems = [], []
    if all_from_metadata:
        files += [downloads.gz3d_file_name(key) for key in metadata]
    by_manga = {}
    for key, row in metadata.items():
        by_manga.setdefault(str(row.get("MANGAID", "")).strip(), []).append(key)
    for name in names:
        try:
            files.append(downloads.gz3d_file_name(name))
            continue
        except ValueError as exc:
            reason = str(exc)
        keys = by_manga.get(name.strip(), [])
        if keys:
            files += [downloads.gz3d_file_name(k) for k in keys]
        elif metadata:
            problems.append((name, f"neither a GZ3D file name nor a MaNGA id in {metadata_path}"))
        else:
            problems.append((name, f"{reason}; to fetch by MaNGA id give --metadata gz3d_metadata.fits"))
    return list(dict.fromkeys(files)), problems


def fetch_gz3d(*, names: list[str], metadata_path=None, all_from_metadata: bool = False,
               base_url: str | None = None, out_dir=None, checksums_path=None, import_files: bool = True,
               retries: int = 4, backoff: float = 1.0, timeout: float = 60.0, progress: bool = True,
               limit: int | None = None) -> FetchOutcome:
    """Download GZ3D files into ``out_dir`` and import them. Raises gz3d.GZ3DError for an unreadable
    metadata table; every per-file problem lands in the outcome's summaries."""
    base_url = configured_url(base_url, "EVALSITE_GZ3D_BASE_URL", downloads.DEFAULT_GZ3D_BASE_URL)
    out_dir = Path(out_dir) if out_dir else default_download_dir("gz3d")
    files, problems = gz3d_requests(names, metadata_path, all_from_metadata)
    if limit is not None:
        files = files[:limit]
    checksums = downloads.read_checksums(checksums_path) if checksums_path else {}
    summary = ImportSummary()
    for name, reason in problems:
        summary.fail(name, reason)
    jobs = [Download(label=f, url=downloads.gz3d_url(base_url, f), dest=out_dir / f, checksum=checksums.get(f))
            for f in files]
    summary, done = fetch_all(jobs, retries=retries, backoff=backoff, timeout=timeout, progress=progress,
                              summary=summary)
    outcome = FetchOutcome(downloads=summary, files=[p for _, p in done])
    if import_files and outcome.files:
        from segmentation.services.imports.gz3d import import_gz3d

        result = import_gz3d([str(p) for p in outcome.files], metadata_path=metadata_path, progress=progress,
                             arguments={"fetched_from": base_url})
        outcome.imported, outcome.batch = result.summary, result.batch
    return outcome


# --- cutouts ----------------------------------------------------------------------------------------
def cutout_file_name(name: str, *, layer: str, bands: str, size: int, pixel_scale: float) -> str:
    """A file name that says what was asked for, safe on every file system."""
    safe = re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("._") or "galaxy"
    return f"{safe}__{layer}_{bands}_{size}px_{pixel_scale:g}as.fits"


def _no_data(path: Path) -> bool:
    from astropy.io import fits

    with fits.open(path, memmap=False) as hdul:
        data = next((h.data for h in hdul if h.data is not None and h.header.get("NAXIS", 0) >= 2), None)
    return data is None or not np.any(data)


def fetch_cutouts(*, galaxies, base_url: str | None = None, out_dir=None, size: int = downloads.CUTOUT_SIZE,
                  pixel_scale: float = downloads.CUTOUT_PIXEL_SCALE, layer: str = downloads.CUTOUT_LAYER,
                  bands: str = downloads.CUTOUT_BANDS, kind: str = Image.Kind.SURVEY_CUTOUT,
                  import_files: bool = True, retries: int = 4, backoff: float = 1.0, timeout: float = 60.0,
                  progress: bool = True) -> FetchOutcome:
    """Download a ``size`` x ``size`` px cutout at ``pixel_scale`` arcsec/px centred on each galaxy and
    import it as that galaxy's image of ``kind`` (ImportBatch kind images)."""
    base_url = configured_url(base_url, "EVALSITE_CUTOUT_URL", downloads.DEFAULT_CUTOUT_URL)
    out_dir = Path(out_dir) if out_dir else default_download_dir("cutouts")
    summary = ImportSummary()
    jobs, rows, taken = [], {}, set()
    for galaxy in galaxies:
        if galaxy.ra is None or galaxy.dec is None:
            summary.fail(galaxy.name, "the galaxy has no ra/dec to centre a cutout on")
            continue
        file_name = cutout_file_name(galaxy.name, layer=layer, bands=bands, size=size, pixel_scale=pixel_scale)
        if file_name in taken:  # two names that differ only in unsafe characters
            file_name = f"{galaxy.pk}_{file_name}"
        taken.add(file_name)
        url = downloads.cutout_url(base_url, galaxy.ra, galaxy.dec, size=size, pixel_scale=pixel_scale,
                                   layer=layer, bands=bands)
        job = Download(label=galaxy.name, url=url, dest=out_dir / file_name)
        jobs.append(job)
        rows[file_name] = ImageRow(
            label=galaxy.name, name=galaxy.name, ra=galaxy.ra, dec=galaxy.dec, pixel_scale=pixel_scale,
            file=file_name)  # by its unique name: IAU names and NSA ids can repeat across galaxies
    summary, done = fetch_all(jobs, retries=retries, backoff=backoff, timeout=timeout, progress=progress,
                              summary=summary)
    outcome = FetchOutcome(downloads=summary)
    for job, path in done:
        if _no_data(path):
            summary.fail(job.label, f"{path.name}: every pixel is zero (outside the survey footprint?); not imported")
        else:
            outcome.files.append(path)
    if import_files and outcome.files:
        batch = batch_start(kind=ImportBatch.Kind.IMAGES, source=base_url,
                                     arguments={"fetched_from": base_url, "size": size, "pixel_scale": pixel_scale,
                                                "layer": layer, "bands": bands, "kind": kind})
        outcome.imported = import_images(directory=out_dir, rows=[rows[p.name] for p in outcome.files], kind=kind,
                                         batch=batch, progress=progress, report_unused=False)
        batch_finish(batch=batch, summary=outcome.imported.as_dict())
        outcome.batch = batch
    return outcome


def galaxies_for_cutouts(*, names: list[str] | None, kind: str, refetch: bool):
    """The galaxies named (by name, MaNGA id or IAU name), or, with no names, every galaxy with a
    position that lacks an image of ``kind`` (all of them with ``refetch``). Returns (galaxies, unknown)."""
    if names:
        found, unknown = [], []
        for name in names:
            galaxy = (Galaxy.objects.filter(name=name).first() or Galaxy.objects.filter(manga_id=name).first()
                      or Galaxy.objects.filter(iau_name=name).first())
            if galaxy is None:
                unknown.append(name)
            else:
                found.append(galaxy)
        return found, unknown
    qs = Galaxy.objects.filter(ra__isnull=False, dec__isnull=False)
    if not refetch:
        qs = qs.exclude(images__kind=kind)
    return list(qs.order_by("name")), []
