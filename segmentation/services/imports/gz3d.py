"""Import Galaxy Zoo: 3D files: files -> ``evalcore.formats.gz3d`` -> services. One transaction per galaxy.

For each file: the galaxy (matched by MaNGA id), its subject image, the volunteers' raw polygons, and one
mask per task whose numerators are the number of classifications covering each pixel over the number of
classifications (``gz3d.volunteer_counts``). A task nobody was asked about is stored as *not asked*. Every
file's HDU 3 / 4 is compared with our own rasterisation; disagreements go to the summary and to
``Mask.details["crosscheck"]``. See docs/gz3d.md.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from tqdm import tqdm

from evalcore.formats import coords, gz3d, imagefiles, pngcodec
from segmentation.models import Galaxy, Mask
from segmentation.services.galaxies import galaxy_sync, image_store
from segmentation.services.imports.batches import batch_finish, batch_start
from segmentation.services.imports.summary import ImportSummary
from segmentation.services.masks import classifications_replace, mask_store, producer_get_or_create
from segmentation.services.truth import truth_store

DEFAULT_RELEASE = "v4_0_0"
PRODUCER_NAME = "GZ3D"
BAD_JSON_CHOICES = ("skip", "fallback")
TASKS = (  # structure, classifications attribute, counts attribute, counts HDU
    ("spiral", "spiral", "spiral_counts", gz3d.SPIRAL_COUNTS_HDU),
    ("bar", "bar", "bar_counts", gz3d.BAR_COUNTS_HDU),
)

log = logging.getLogger(__name__)


@dataclass
class TaskResult:
    """What one task (spiral or bar) of one file becomes, computed before touching the database."""

    structure: str
    state: str
    numerators: np.ndarray | None
    denominator: int
    rows: list[dict]
    details: dict
    dropped: int = 0
    disagreement: str | None = None


@dataclass
class PreparedFile:
    """Everything the database needs from one file (small enough to pass between processes)."""

    path: Path
    image: np.ndarray  # (H, W, 3) uint8
    wcs_text: str  # celestial WCS as header text
    pixel_scale: float  # arcsec / px
    truth: object  # truthfile.Truth or None
    name: str
    match: dict
    defaults: dict
    tasks: list[TaskResult] = field(default_factory=list)
    image_png: bytes | None = None  # encoded by the reading process, so parallel jobs share that work


class NothingToImport(ValueError):
    """The paths given hold no GZ3D file; the message says where was looked and for what."""


def is_fits_name(name: str) -> bool:
    """A file name with a FITS suffix (``.fits``, ``.fit``, ``.fts``, each optionally ``.gz``), in any case:
    the suffixes ``import_images`` takes for FITS."""
    return name.lower().endswith(imagefiles.FITS_SUFFIXES)


def gz3d_files(paths) -> tuple[list[Path], list[Path], list[tuple[str, str]]]:
    """Expand files and folders. Returns (per-galaxy files, summary tables found, missing paths with reason).

    Folders are searched recursively for files with a FITS suffix (``is_fits_name``; ``X.FITS`` too, and a
    folder named like a file is searched, not read); the release's summary tables (``gz3d_metadata.fits``
    ...) are set apart. A file named on the command line is read whatever its name.
    """
    files, summaries, missing = [], [], []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if is_fits_name(f.name) and f.is_file())
        elif p.exists():
            found = [p]
        else:
            missing.append((str(p), "no such file or folder"))
            continue
        for f in found:
            (summaries if f.name.lower() in gz3d.SUMMARY_FILES else files).append(f)
    seen, unique = set(), []
    for f in files:
        if f.resolve() not in seen:
            seen.add(f.resolve())
            unique.append(f)
    return unique, summaries, missing


def _task_result(gz: gz3d.GZ3DFile, structure: str, attr: str, counts_attr: str, hdu: int,
                 on_bad_json: str) -> TaskResult:
    shape = gz.shape
    classifications = getattr(gz, attr)
    file_counts = getattr(gz, counts_attr)
    n = len(classifications)
    if n == 0:
        return TaskResult(structure, Mask.State.NOT_ASKED, None, 1, [],
                          {"file": Path(gz.path).name, "source": f"HDU {hdu + 6} has no rows: not asked"})
    if structure in gz.unusable_tasks:
        if on_bad_json != "fallback":
            raise gz3d.GZ3DError(gz.unusable_tasks[structure])
        numerators = np.clip(np.rint(file_counts), 0, n).astype(np.int64)
        details = {"file": Path(gz.path).name, "source": f"HDU {hdu} / N (fallback)",
                   "fallback_reason": gz.unusable_tasks[structure]}
        return TaskResult(structure, Mask.State.MARKED, numerators, n, [], details)
    raster = gz3d.rasterise_task(classifications, shape)
    rows, reasons = [], {}
    for c, kept, dropped in zip(classifications, raster.kept, raster.dropped):
        for reason, k in dropped.items():
            reasons[reason] = reasons.get(reason, 0) + k
        rows.append({"classification_id": c.classification_id, "time_stamp": c.time_stamp[:40],
                     "polygons": kept, "dropped_polygons": sum(dropped.values())})
    dropped_total = sum(reasons.values())
    union_counts = raster.volunteer_counts
    facts = gz3d.compare_counts(raster.polygon_counts, file_counts)
    details = {"file": Path(gz.path).name, "source": f"HDU {hdu + 6} polygons, union per classification",
               "dropped_polygons": dropped_total, "dropped_reasons": reasons, "crosscheck": facts}
    disagreement = None if facts["agrees"] else gz3d.describe_disagreement(hdu, facts)
    return TaskResult(structure, Mask.State.MARKED, union_counts, n, rows, details, dropped_total, disagreement)


def _identity(gz: gz3d.GZ3DFile, catalogue_row: dict | None) -> tuple[str, dict, dict]:
    meta = {**(catalogue_row or {}), **{k: v for k, v in gz.metadata.items() if v not in (None, "")}}
    manga_id = str(meta.get("MANGAID") or "").strip() or None
    iau_name = str(meta.get("IAUNAME") or "").strip() or None
    if not manga_id and not iau_name:
        raise gz3d.GZ3DError("HDU 5 has neither MANGAID nor IAUNAME: cannot tell which galaxy this is")
    nsa_id = meta.get("nsa_id")
    nsa_id = int(nsa_id) if isinstance(nsa_id, int | float) and nsa_id > 0 else None
    subject = gz3d.subject_id_from_name(gz.path) or (catalogue_row or {}).get("zooniverse_subject_id")
    defaults = {
        "iau_name": iau_name, "nsa_id": nsa_id,
        "ra": gz3d.finite_or_none(meta.get("ra")), "dec": gz3d.finite_or_none(meta.get("dec")),
    }
    other = {"gz3d_file": Path(gz.path).name}
    if subject:
        other["zooniverse_subject_id"] = int(subject)
    defaults["other_ids"] = other
    return iau_name or manga_id, {"manga_id": manga_id}, defaults


def prepare_file(path: Path, *, catalogue: dict | None = None, on_bad_json: str = "skip") -> PreparedFile:
    """Read and rasterise one file without touching the database. Raises ``GZ3DError``."""
    gz = gz3d.read_gz3d(path, strict_json=on_bad_json != "fallback", max_bytes=settings.EVALSITE_MAX_FILE_BYTES,
                        max_pixels=settings.EVALSITE_MAX_IMAGE_PIXELS)
    row = (catalogue or {}).get(gz3d.metadata_key(path))
    name, match, defaults = _identity(gz, row)
    wcs = gz.wcs
    return PreparedFile(
        path=path, image=gz.image, wcs_text=wcs.to_header().tostring(sep="\n"),
        pixel_scale=round(coords.pixel_scale_arcsec(wcs), 6), truth=gz.truth, name=name, match=match,
        defaults=defaults,
        tasks=[_task_result(gz, structure, attr, counts_attr, hdu, on_bad_json)
               for structure, attr, counts_attr, hdu in TASKS],
        image_png=pngcodec.encode(gz.image),
    )


def _unique_name(name: str, manga_id: str | None) -> str:
    """IAU names are not unique across MaNGA ids (re-observed galaxies): keep both galaxies apart."""
    if not manga_id or Galaxy.objects.filter(manga_id=manga_id).exists():
        return name
    other = Galaxy.objects.filter(name=name).exclude(manga_id=None).exclude(manga_id=manga_id).exists()
    return f"{name} ({manga_id})" if other else name


@dataclass
class ImportResult:
    summary: ImportSummary
    batch: object  # the ImportBatch
    galaxy_ids: list[int] = field(default_factory=list)  # every galaxy imported, updated or unchanged


def store_file(prepared: PreparedFile, *, release: str = DEFAULT_RELEASE, batch=None) -> tuple[str, Galaxy]:
    """Write one prepared file in one transaction. Returns ("imported" | "updated" | "unchanged", galaxy)."""
    producer = producer_get_or_create(
        kind="volunteers", name=PRODUCER_NAME, version=release,
        description=f"Galaxy Zoo: 3D volunteers, release {release}",
    )
    with transaction.atomic():
        manga_id = prepared.match.get("manga_id")
        existing = Galaxy.objects.filter(manga_id=manga_id).first() if manga_id else None
        defaults = dict(prepared.defaults)
        if existing is not None:
            defaults["other_ids"] = {**existing.other_ids, **defaults["other_ids"]}
        synced = galaxy_sync(
            name=_unique_name(prepared.name, manga_id), match=prepared.match, defaults=defaults, batch=batch)
        galaxy, created = synced.galaxy, synced.status == "created"
        image, image_status = image_store(
            galaxy=galaxy, kind="gz3d_subject", rgb=prepared.image, wcs_header=prepared.wcs_text,
            pixel_scale=prepared.pixel_scale, bands="RGB (GZ3D subject JPEG)", batch=batch, png=prepared.image_png)
        changed = image_status != "unchanged" or synced.status == "updated"
        for task in prepared.tasks:
            # a fallback or not-asked task has no usable drawings: stale ones from an earlier import go
            classifications_replace(galaxy=galaxy, image=image, structure=task.structure,
                                             rows=task.rows, batch=batch)
            result = mask_store(
                galaxy=galaxy, image=image, structure=task.structure, producer=producer, state=task.state,
                numerators=task.numerators, denominator=task.denominator,
                n_volunteers=task.denominator if task.state != Mask.State.NOT_ASKED else None,
                details=task.details, batch=batch)
            changed |= result.status != "unchanged"
        if prepared.truth is not None:
            changed |= truth_store(galaxy=galaxy, image=image, truth=prepared.truth, batch=batch).changed
    if created:
        return "imported", galaxy
    return ("updated" if changed else "unchanged"), galaxy


_WORKER = {}  # per worker process: the catalogue and options, sent once instead of with every file


def _worker_init(catalogue, on_bad_json):
    _WORKER.update(catalogue=catalogue, on_bad_json=on_bad_json)


def _prepare_one(path, catalogue, on_bad_json):
    try:
        return path, prepare_file(path, catalogue=catalogue, on_bad_json=on_bad_json), None
    except gz3d.GZ3DError as exc:
        return path, None, str(exc)
    except Exception as exc:  # one odd file among thousands must not stop the import: report it instead
        return path, None, f"unexpected {type(exc).__name__} while reading: {exc}"


def _prepare_job(path):
    return _prepare_one(path, _WORKER["catalogue"], _WORKER["on_bad_json"])


def _prepared(files, catalogue, on_bad_json, jobs):
    """(path, PreparedFile or None, error or None) per file, in order. With jobs > 1, reading and
    rasterising (the Django-free part) run in worker processes while this process writes."""
    busy = [t.name for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if jobs > 1 and busy:
        # Forking a process that runs other threads (a web server, a browser driver) can deadlock the
        # children on a lock held at fork time; read in this process instead. (Daemon helpers such as
        # tqdm's monitor hold no such lock.)
        log.warning("import_gz3d: threads %s are running; reading files in this process instead of %d jobs",
                    ", ".join(busy), jobs)
        jobs = 1
    if jobs <= 1:
        for path in files:
            yield _prepare_one(path, catalogue, on_bad_json)
        return
    # Forked workers only read files (no database), but a connection object they inherit must not be closed
    # or reused by them; close ours first unless a transaction is open (the children never touch it then).
    if not any(c.in_atomic_block for c in connections.all(initialized_only=True)):
        connections.close_all()
    with multiprocessing.get_context("fork").Pool(jobs, _worker_init, (catalogue, on_bad_json)) as pool:
        yield from pool.imap(_prepare_job, files, chunksize=1)


def import_gz3d(paths, *, release: str = DEFAULT_RELEASE, metadata_path=None, on_bad_json: str = "skip",
                progress: bool = True, jobs: int = 1, arguments: dict | None = None) -> ImportResult:
    """Import GZ3D files and folders; the summary is also saved on the ImportBatch. A bad file is
    reported in the summary and changes nothing; this never raises for one. ``jobs`` > 1 reads and
    rasterises in that many worker processes; the database writes stay in this process."""
    if on_bad_json not in BAD_JSON_CHOICES:
        raise ValueError(f"on_bad_json must be one of {BAD_JSON_CHOICES}, got {on_bad_json!r}")
    summary = ImportSummary()
    files, summaries, missing = gz3d_files(paths)
    if not files:
        looked = "; ".join(f"{where}: {reason}" for where, reason in missing) or ", ".join(str(p) for p in paths)
        raise NothingToImport(
            f"no GZ3D file found ({looked}). A folder is searched, with its subfolders, for files ending in "
            f"{', '.join(imagefiles.FITS_SUFFIXES)} (any case)"
            + (f"; found only the release's summary tables {', '.join(s.name for s in summaries)}"
               if summaries else ""))
    for where, reason in missing:
        summary.fail(where, reason)
    for table in summaries:
        if table.name.lower() != "gz3d_metadata.fits":
            summary.skipped += 1
            summary.warn(table, "a summary table of the release, not a galaxy file: skipped")
    catalogue = {}
    for table in [*([Path(metadata_path)] if metadata_path else []),
                  *[s for s in summaries if s.name.lower() == "gz3d_metadata.fits"]]:
        try:
            rows = gz3d.read_gz3d_metadata(table)
            catalogue.update(rows)
            summary.count("metadata rows read", len(rows))
        except gz3d.GZ3DError as exc:
            summary.fail(table, f"metadata table: {exc}")
    batch = batch_start(kind="gz3d", source="\n".join(str(p) for p in paths),
                                 arguments={"release": release, "on_bad_json": on_bad_json, "jobs": jobs,
                                            **(arguments or {})})
    result = ImportResult(summary=summary, batch=batch)
    prepared_files = _prepared(files, catalogue, on_bad_json, jobs)
    for path, prepared, error in tqdm(prepared_files, total=len(files), desc="GZ3D files", unit="file",
                                      disable=not progress):
        if error:
            summary.fail(path, error)
            continue
        try:
            status, galaxy = store_file(prepared, release=release, batch=batch)
        except (ValueError, DatabaseError) as exc:  # refused by a service; the transaction rolled back
            summary.fail(path, str(exc))
            continue
        result.galaxy_ids.append(galaxy.pk)
        if status == "imported":
            summary.imported += 1
        elif status == "updated":
            summary.updated += 1
        else:
            summary.unchanged += 1
        for task in prepared.tasks:
            if task.dropped:
                summary.count("polygons dropped", task.dropped)
            if task.details.get("fallback_reason"):
                summary.count(f"{task.structure} masks from HDU counts (fallback)")
                summary.warn(path, f"{task.structure}: fell back to HDU counts / N: {task.details['fallback_reason']}")
            if task.disagreement:
                summary.count(f"{task.structure} HDU cross-check disagreements")
                summary.warn(path, f"{task.structure}: {task.disagreement}")
    batch_finish(batch=batch, summary=summary.as_dict())
    return result
