from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evalcore.sky import catalogue as cat
from segmentation.models import ImportBatch
from segmentation.services.imports.batches import batch_finish, batch_running
from segmentation.services.imports.catalogue import DEFAULT_RADIUS_ARCSEC, import_catalogue


class Command(BaseCommand):
    help = ("Join a catalogue (CSV or FITS table) to the galaxies by identifier or sky position and fill "
            "redshift, axis ratio and position angle. Reports unmatched and ambiguous rows.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV with a header row, or a FITS file with a table HDU.")
        parser.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                            help="Column of a value: redshift, axis_ratio, position_angle, ra, dec "
                                 "(e.g. --map redshift=Z --map axis_ratio=SERSIC_BA --map position_angle=SERSIC_PHI). "
                                 "NAME[i] picks element i of an array column.")
        parser.add_argument("--id-column", action="append", default=[], metavar="ID=COLUMN",
                            help="Column of an identifier: manga_id, nsa_id, name, iau_name, sdss_objid "
                                 "(e.g. --id-column manga_id=MANGAID --id-column nsa_id=NSAID).")
        parser.add_argument("--radius", type=float, default=DEFAULT_RADIUS_ARCSEC,
                            help="Sky match radius in arcsec (default %(default)s).")
        parser.add_argument("--create", action="store_true", help="Create galaxies for unmatched rows.")
        parser.add_argument("--only-missing", action="store_true", help="Fill empty fields only; never overwrite.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, file, map, id_column, radius, create, only_missing, no_progress, **options):
        arguments = {"map": map, "id_column": id_column, "radius": radius, "create": create,
                     "only_missing": only_missing}
        try:
            mapping = cat.parse_mapping(map, "--map")
            ids = cat.parse_mapping(id_column, "--id-column")
            table = cat.read_table(file, max_bytes=settings.EVALSITE_MAX_FILE_BYTES)
        except cat.CatalogueError as exc:
            raise CommandError(str(exc)) from None
        with batch_running(kind=ImportBatch.Kind.CATALOGUE, source=file, arguments=arguments) as batch:
            try:
                summary = import_catalogue(table=table, mapping=mapping, id_columns=ids, radius_arcsec=radius,
                                           create=create, only_missing=only_missing, batch=batch,
                                           progress=not no_progress)
            except cat.CatalogueError as exc:
                batch_finish(batch=batch, summary={"error": str(exc)})
                raise CommandError(str(exc)) from None
            batch_finish(batch=batch, summary=summary.as_dict())
        for line in summary.lines():
            self.stdout.write(line)
