from django.core.management.base import BaseCommand, CommandError

from segmentation.models import Image
from segmentation.services.imports import gz3d as gz3d_import
from segmentation.services.imports.batches import batch_finish
from segmentation.services.imports.reproject import reproject_galaxy_masks


class Command(BaseCommand):
    help = ("Import Galaxy Zoo: 3D per-galaxy files (files or folders; folders are searched for .fits, .fit, .fts, "
            "optionally .gz, in any case): galaxy, subject image, raw polygons and volunteer masks. Safe to repeat: "
            "a re-import updates, never duplicates. Finding no file is an error.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="GZ3D files or folders (searched recursively).")
        parser.add_argument("--release", default=gz3d_import.DEFAULT_RELEASE,
                            help="Release the volunteers' producer is named after (default %(default)s).")
        parser.add_argument("--metadata", metavar="FILE",
                            help="The release's gz3d_metadata.fits (found automatically inside a given folder).")
        parser.add_argument("--on-bad-json", choices=gz3d_import.BAD_JSON_CHOICES, default="skip",
                            help="A task whose polygons are unusable (not valid JSON, no paths column): skip the "
                                 "file (default), or fall back to HDU 3 / 4 divided by the number of classifications.")
        parser.add_argument("--reproject-onto", metavar="KIND",
                            choices=[k for k in Image.Kind.values if k != Image.Kind.GZ3D_SUBJECT],
                            help="Afterwards, reproject each imported galaxy's masks by WCS onto its image of this "
                                 "kind where it has one: %(choices)s.")
        parser.add_argument("--jobs", type=int, default=1,
                            help="Worker processes that read and rasterise files (default 1); writes stay in one.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, paths, release, metadata, on_bad_json, reproject_onto, jobs, no_progress, **options):
        if jobs < 1:
            raise CommandError(f"--jobs must be at least 1, got {jobs}")
        try:
            result = gz3d_import.import_gz3d(
                paths, release=release, metadata_path=metadata, on_bad_json=on_bad_json, progress=not no_progress,
                jobs=jobs,
                arguments={"reproject_onto": reproject_onto} if reproject_onto else None,
            )
        except gz3d_import.NothingToImport as exc:
            raise CommandError(str(exc)) from None
        summary, batch = result.summary, result.batch
        if reproject_onto:
            done = reproject_galaxy_masks(galaxy_ids=result.galaxy_ids, target_kind=reproject_onto,
                                          summary=summary, batch=batch)
            batch_finish(batch=batch, summary=summary.as_dict())
            self.stdout.write(f"reprojected the masks of {done} galaxies onto their {reproject_onto} image")
        for line in summary.lines():
            self.stdout.write(line)
        self.stdout.write(f"(import batch #{batch.pk})")
        total = summary.imported + summary.updated + summary.unchanged
        if summary.failed and not total:
            raise CommandError(f"nothing imported: {summary.failed} of {summary.failed} inputs failed")
