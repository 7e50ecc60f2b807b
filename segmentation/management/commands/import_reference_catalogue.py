from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evalcore.sky import catalogue as cat
from segmentation.services.catalogues import catalogue_import


class Command(BaseCommand):
    help = ("Import a reference catalogue (CSV or FITS table) to compare measurements with, e.g. Hoyle et al. "
            "(2011) bar lengths: --key objid --ra ra --dec dec --map bar_length=length_avg "
            "--map bar_length_err=length_stdev --unit bar_length=kpc. Re-importing a name replaces its rows.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV with a header row, or a FITS file with a table HDU.")
        parser.add_argument("--name", required=True, help="Catalogue name (unique), for compare_measurements.")
        parser.add_argument("--key", required=True, help="Column of the catalogue's row identifier.")
        parser.add_argument("--ra", required=True, help="Column of right ascension, deg.")
        parser.add_argument("--dec", required=True, help="Column of declination, deg.")
        parser.add_argument("--map", action="append", default=[], metavar="QUANTITY=COLUMN",
                            help="A quantity and its column; QUANTITY_err is taken as its uncertainty.")
        parser.add_argument("--unit", action="append", default=[], metavar="QUANTITY=UNIT",
                            help="Unit of a quantity: kpc or arcsec for lengths, deg for angles.")
        parser.add_argument("--citation", default="", help="How to cite the catalogue.")

    def handle(self, *args, file, name, key, ra, dec, map, unit, citation, **options):
        try:
            values = cat.parse_mapping(map, "--map")
            units = cat.parse_mapping(unit, "--unit")
            if not values:
                raise cat.CatalogueError("give at least one --map QUANTITY=COLUMN")
            result = catalogue_import(
                path=file, name=name, key=key, ra=ra, dec=dec, values=values, units=units, citation=citation,
                max_bytes=getattr(settings, "EVALSITE_MAX_FILE_BYTES", None))
        except cat.CatalogueError as exc:
            raise CommandError(str(exc)) from None
        for line in result.lines():
            self.stdout.write(line)
