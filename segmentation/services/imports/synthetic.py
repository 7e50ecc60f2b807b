"""Import a synthetic survey folder (written by ``evalcore.synthetic.survey``) through the real importers.

Order: the survey cutouts first (catalogue importer: galaxy, cutout image, its native truth), then the
GZ3D files through exactly the code path of real GZ3D files (subject image, polygons, volunteer masks,
truth), then the volunteer masks are reprojected by WCS onto the cutouts, as for real data. Galaxies are
marked synthetic by the truth they carry; the volunteers' producer is named after the synthetic crowd
and its model version, never after a real GZ3D release.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from evalcore.synthetic import survey
from segmentation.models import Image, ImportBatch
from segmentation.services.imports import gz3d as gz3d_import
from segmentation.services.imports.batches import batch_finish, batch_start
from segmentation.services.imports.images import import_image_folder
from segmentation.services.imports.reproject import reproject_galaxy_masks
from segmentation.services.imports.summary import ImportSummary


class SyntheticImportError(ValueError):
    """A folder that is not a synthetic survey; the message says what is missing."""


@dataclass
class SyntheticImport:
    batch: ImportBatch
    images: ImportSummary
    gz3d: ImportSummary
    reprojected: int
    galaxy_ids: list = field(default_factory=list)

    def lines(self) -> list[str]:
        return (["survey cutouts: " + self.images.lines()[0], *self.images.lines()[1:],
                 "GZ3D files: " + self.gz3d.lines()[0], *self.gz3d.lines()[1:],
                 f"volunteer masks reprojected onto the cutouts of {self.reprojected} galaxies"])


def volunteer_release(settings: dict) -> str:
    """Version string of the synthetic volunteers' producer, e.g. 'synthetic-default-v1'."""
    return f"synthetic-{settings.get('crowd', 'default')}-v{settings.get('volunteer_model_version', '?')}"


def read_survey_settings(directory) -> dict:
    path = Path(directory) / survey.SUMMARY_NAME
    if not path.is_file():
        raise SyntheticImportError(f"{directory} has no {survey.SUMMARY_NAME}: not a survey written by make_synthetic")
    try:
        return json.loads(path.read_text())["settings"]
    except (ValueError, KeyError) as exc:
        raise SyntheticImportError(f"{path} is unreadable ({exc})") from None


def import_synthetic_survey(*, directory, progress: bool = True, jobs: int = 1) -> SyntheticImport:
    """Import every galaxy of a synthetic survey folder. Safe to repeat (the importers are idempotent)."""
    directory = Path(directory)
    settings = read_survey_settings(directory)
    for needed in ("gz3d", "cutouts", survey.CATALOGUE_NAME):
        if not (directory / needed).exists():
            raise SyntheticImportError(f"{directory} has no {needed}")
    batch = batch_start(kind=ImportBatch.Kind.SYNTHETIC, source=str(directory), arguments=settings)
    images = import_image_folder(directory=directory / "cutouts", catalogue_path=directory / survey.CATALOGUE_NAME,
                                 kind=Image.Kind.SURVEY_CUTOUT, batch=batch, progress=progress)
    result = gz3d_import.import_gz3d([directory / "gz3d"], release=volunteer_release(settings), progress=progress,
                                     jobs=jobs, arguments={"synthetic_survey_batch": batch.pk, **settings})
    reprojected = reproject_galaxy_masks(galaxy_ids=result.galaxy_ids, target_kind=Image.Kind.SURVEY_CUTOUT,
                                         summary=result.summary, batch=batch)
    batch_finish(batch=result.batch, summary=result.summary.as_dict())
    batch_finish(batch=batch, summary={"images": images.as_dict(), "gz3d": result.summary.as_dict(),
                                                "gz3d_batch": result.batch.pk, "reprojected": reprojected})
    return SyntheticImport(batch=batch, images=images, gz3d=result.summary, reprojected=reprojected,
                           galaxy_ids=list(result.galaxy_ids))
