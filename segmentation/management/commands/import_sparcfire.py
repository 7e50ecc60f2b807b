from django.core.management.base import BaseCommand, CommandError

from segmentation.models import ImportBatch
from segmentation.services.imports.batches import batch_finish, batch_start
from segmentation.services.imports.sparcfire import GalaxyImportError, import_run


class Command(BaseCommand):
    help = ("Import the spiral masks and arcs of a real SpArcFiRe run (its output folder). Galaxies are "
            "matched by name; with --images, unknown galaxies are created from their input FITS.")

    def add_arguments(self, parser):
        parser.add_argument("directory", help="SpArcFiRe output folder (e.g. G.out), searched at any depth")
        parser.add_argument("--images", help="folder of the run's input images, <name>.fits")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, directory, images=None, no_progress=False, **options):
        batch = batch_start(kind=ImportBatch.Kind.SPARCFIRE, source=directory,
                            arguments={"images": images})
        try:
            summary = import_run(directory=directory, images_dir=images, batch=batch, progress=not no_progress)
        except GalaxyImportError as exc:
            batch_finish(batch=batch, summary={"error": str(exc)})
            raise CommandError(str(exc)) from None
        batch_finish(batch=batch, summary=summary.as_dict())
        for line in summary.lines():
            self.stdout.write(line)
