from django.core.management.base import BaseCommand, CommandError

from evalcore.sky.catalogue import CatalogueError
from segmentation.models import Image, ImportBatch
from segmentation.services.imports.batches import batch_finish, batch_running
from segmentation.services.imports.images import import_images, read_image_catalogue


class Command(BaseCommand):
    help = ("Import FITS (one band or a g,r,z cube in nanomaggies), PNG and JPEG images of galaxies listed in a "
            "catalogue (columns name, ra, dec; optionally redshift, pixel_scale, manga_id, iau_name, nsa_id, file).")

    def add_arguments(self, parser):
        parser.add_argument("directory", help="Folder holding the image files.")
        parser.add_argument("--catalogue", required=True, help="CSV (or FITS table) with one row per image.")
        parser.add_argument("--kind", default=Image.Kind.SURVEY_CUTOUT, choices=Image.Kind.values,
                            help="Image kind to store (default: survey_cutout).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, directory, catalogue, kind, no_progress, **options):
        try:  # a catalogue or folder that cannot be used stops here, before any batch is recorded
            rows, summary = read_image_catalogue(directory=directory, catalogue_path=catalogue)
        except CatalogueError as exc:
            raise CommandError(str(exc)) from None
        with batch_running(kind=ImportBatch.Kind.IMAGES, source=f"{directory} (catalogue {catalogue})",
                           arguments={"directory": directory, "catalogue": catalogue, "kind": kind}) as batch:
            summary = import_images(directory=directory, rows=rows, kind=kind, batch=batch, summary=summary,
                                    progress=not no_progress)
            batch_finish(batch=batch, summary=summary.as_dict())
        for line in summary.lines():
            self.stdout.write(line)
        if summary.failed:
            self.stderr.write(f"{summary.failed} image(s) failed; see above.")
            if not summary.imported + summary.updated + summary.unchanged:
                raise CommandError(f"nothing imported: all {summary.failed} catalogue row(s) failed")
