from django.core.management.base import BaseCommand, CommandError

from evalcore.sky import downloads
from segmentation.management.commands.fetch_gz3d import _report
from segmentation.models import Image
from segmentation.services.imports.fetch import (
    configured_url,
    default_download_dir,
    fetch_cutouts,
    galaxies_for_cutouts,
)


class Command(BaseCommand):
    help = ("Download a g,r,z FITS cutout centred on each galaxy from the Legacy Survey cutout service (or another "
            "service taking the same parameters) with retries and resume, then import it. Needs internet access.")

    def add_arguments(self, parser):
        parser.add_argument("--galaxies", nargs="+", metavar="NAME",
                            help="Galaxies by name, MaNGA id or IAU name (default: every galaxy with a position "
                                 "and no image of --kind yet).")
        parser.add_argument("--refetch", action="store_true",
                            help="Without --galaxies: also galaxies that already have an image of --kind.")
        parser.add_argument("--base-url", help="Cutout service URL (default: $EVALSITE_CUTOUT_URL or "
                                               f"{downloads.DEFAULT_CUTOUT_URL}).")
        parser.add_argument("--out", help=f"Download folder (default {default_download_dir('cutouts')}).")
        parser.add_argument("--size", type=int, default=downloads.CUTOUT_SIZE, help="Cutout size in px.")
        parser.add_argument("--pixscale", type=float, default=downloads.CUTOUT_PIXEL_SCALE, help="arcsec per px.")
        parser.add_argument("--layer", default=downloads.CUTOUT_LAYER, help="Survey layer (default %(default)s).")
        parser.add_argument("--bands", default=downloads.CUTOUT_BANDS, help="Bands (default %(default)s).")
        parser.add_argument("--kind", default=Image.Kind.SURVEY_CUTOUT, choices=Image.Kind.values)
        parser.add_argument("--retries", type=int, default=4, help="Retries per file (default %(default)s).")
        parser.add_argument("--backoff", type=float, default=1.0, help="First retry wait in s, doubling.")
        parser.add_argument("--timeout", type=float, default=60.0, help="Network time-out in s.")
        parser.add_argument("--no-import", action="store_true", help="Only download.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bars.")

    def handle(self, *args, galaxies, refetch, base_url, out, size, pixscale, layer, bands, kind, retries, backoff,
               timeout, no_import, no_progress, **options):
        chosen, unknown = galaxies_for_cutouts(names=galaxies, kind=kind, refetch=refetch)
        if unknown:
            raise CommandError(f"no galaxy named {', '.join(unknown)} (by name, MaNGA id or IAU name)")
        if not chosen:
            self.stdout.write("no galaxy needs a cutout")
            return
        base = configured_url(base_url, "EVALSITE_CUTOUT_URL", downloads.DEFAULT_CUTOUT_URL)
        self.stdout.write(f"fetching {len(chosen)} cutout(s) from {base}")
        try:
            outcome = fetch_cutouts(galaxies=chosen, base_url=base, out_dir=out, size=size, pixel_scale=pixscale,
                                    layer=layer, bands=bands, kind=kind, import_files=not no_import, retries=retries,
                                    backoff=backoff, timeout=timeout, progress=not no_progress)
        except ValueError as exc:  # size or pixel scale out of range
            raise CommandError(str(exc)) from None
        _report(self, outcome)
