from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from segmentation.management.commands._options import add_selection_arguments
from segmentation.models import Image, Producer
from segmentation.services import exports


class Command(BaseCommand):
    help = ("Write one FITS file per galaxy (the image with its WCS, one extension per mask source and "
            "structure with provenance in the header) and a measurement catalogue (FITS table and CSV). "
            "Run measure_masks first to have the measurements in the catalogue.")

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, help="Output directory (created if absent).")
        add_selection_arguments(parser, split=False)
        parser.add_argument("--image-kind", choices=Image.Kind.values,
                            help="Export the masks on this image kind (default: the GZ3D subject image when "
                                 "it has masks, else the survey cutout).")
        parser.add_argument("--source", action="append", choices=Producer.Kind.values,
                            help="Only masks of these producer kinds (repeatable; default all).")
        parser.add_argument("--catalogue-name", default="measurements",
                            help="File stem of the catalogue (default %(default)s).")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, out, synthetic, names, image_kind, source, catalogue_name, no_progress, **options):
        try:
            galaxies = exports.galaxies_selection(synthetic=synthetic, names=names)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        total = galaxies.count()
        try:
            with tqdm(total=total, desc="galaxies", unit="galaxy", disable=no_progress) as bar:
                summary = exports.export_selection(galaxies=galaxies, out_dir=out, image_kind=image_kind,
                                                   sources=source, catalogue_name=catalogue_name,
                                                   progress=bar.update)
        except OSError as exc:
            raise CommandError(f"cannot write to {out}: {exc}") from None
        for line in summary.lines():
            self.stdout.write(line)
