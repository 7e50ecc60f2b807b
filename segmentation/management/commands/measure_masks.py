from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evalcore.measure import MEASUREMENT_CODE_VERSION
from segmentation.management.commands._options import add_selection_arguments
from segmentation.models import MaskMeasurement, Producer
from segmentation.selectors.measurements import masks_selection
from segmentation.services.measurements import measure_selection, settings_cosmology


class Command(BaseCommand):
    help = ("Measure bars (length in px, arcsec, kpc; projected and deprojected) and spiral arms (number, pitch "
            "angle, chirality) on the current masks and store the results per mask with the code version. "
            "Idempotent: masks already measured with the same inputs are left alone.")

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=Producer.Kind.values, help="Only masks of this producer kind.")
        parser.add_argument("--structure", choices=MaskMeasurement.Kind.values, help="Only bar or spiral masks.")
        add_selection_arguments(parser)
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, source, structure, synthetic, names, split, no_progress, **options):
        try:
            masks = masks_selection(source=source, structure=structure, synthetic=synthetic,
                                    names=names, split=split)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        cosmology = settings_cosmology()
        total = masks.count()
        self.stdout.write(f"measuring {total} current masks with {MEASUREMENT_CODE_VERSION} "
                          f"(H0 {cosmology.H0:g}, Om0 {cosmology.Om0:g})")
        with tqdm(total=total, desc="masks", unit="mask", disable=no_progress) as bar:
            summary = measure_selection(masks=masks, cosmology=cosmology, progress=bar.update)
        for line in summary.lines():
            self.stdout.write(line)
