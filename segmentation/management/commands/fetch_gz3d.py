from django.core.management.base import BaseCommand, CommandError

from evalcore.formats import gz3d
from evalcore.sky import downloads
from segmentation.services.imports.fetch import configured_url, default_download_dir, fetch_gz3d


class Command(BaseCommand):
    help = ("Download Galaxy Zoo: 3D files (by file name, by MaNGA id with --metadata, or every file listed in "
            "gz3d_metadata.fits) with retries and resume, then import them. Needs internet access.")

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="gz3d_<MANGAID>_<IFU>_<SUBJECT>.fits.gz (prefix and .gz optional) "
                                                     "or MaNGA ids (with --metadata).")
        parser.add_argument("--all-from-metadata", metavar="FILE", help="Fetch every file gz3d_metadata.fits lists.")
        parser.add_argument("--metadata", metavar="FILE", help="gz3d_metadata.fits, to look up MaNGA ids and to "
                                                               "import the metadata with the files.")
        parser.add_argument("--base-url", help="Folder URL of the release (default: $EVALSITE_GZ3D_BASE_URL or "
                                               f"{downloads.DEFAULT_GZ3D_BASE_URL}).")
        parser.add_argument("--out", help=f"Download folder (default {default_download_dir('gz3d')}).")
        parser.add_argument("--checksums", metavar="FILE", help="md5sum/sha1sum/sha256sum file to check against.")
        parser.add_argument("--limit", type=int, help="Fetch at most this many files.")
        parser.add_argument("--retries", type=int, default=4, help="Retries per file (default %(default)s).")
        parser.add_argument("--backoff", type=float, default=1.0, help="First retry wait in s, doubling.")
        parser.add_argument("--timeout", type=float, default=60.0, help="Network time-out in s.")
        parser.add_argument("--no-import", action="store_true", help="Only download.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bars.")

    def handle(self, *args, names, all_from_metadata, metadata, base_url, out, checksums, limit, retries, backoff,
               timeout, no_import, no_progress, **options):
        if not names and not all_from_metadata:
            raise CommandError("give GZ3D file names or MaNGA ids, or --all-from-metadata gz3d_metadata.fits")
        if all_from_metadata and metadata and all_from_metadata != metadata:
            raise CommandError("--all-from-metadata and --metadata name different files; give one")
        metadata = metadata or all_from_metadata
        base = configured_url(base_url, "EVALSITE_GZ3D_BASE_URL", downloads.DEFAULT_GZ3D_BASE_URL)
        self.stdout.write(f"fetching from {base}")
        try:
            outcome = fetch_gz3d(names=names, metadata_path=metadata, all_from_metadata=bool(all_from_metadata),
                                 base_url=base, out_dir=out, checksums_path=checksums, import_files=not no_import,
                                 retries=retries, backoff=backoff, timeout=timeout, progress=not no_progress,
                                 limit=limit)
        except (gz3d.GZ3DError, OSError) as exc:
            raise CommandError(f"{metadata or checksums}: {exc}") from None
        _report(self, outcome)


def _report(command, outcome) -> None:
    """Print the download and import summaries; fail the command when nothing at all could be fetched."""
    counts = [f"{k} {v}" for k, v in sorted(outcome.downloads.counters.items())]
    command.stdout.write("downloads: " + ", ".join([*counts, f"failed {outcome.downloads.failed}"]))
    for where, reason in outcome.downloads.failures:
        command.stdout.write(f"  FAILED {where}: {reason}")
    for where, reason in outcome.downloads.warnings:
        command.stdout.write(f"  warning {where}: {reason}")
    if outcome.imported is not None:
        command.stdout.write("import:")
        for line in outcome.imported.lines():
            command.stdout.write(line)
    if outcome.downloads.failed or (outcome.imported and outcome.imported.failed):
        command.stderr.write("some files failed; see above.")
    if outcome.downloads.failed and not outcome.files:
        raise CommandError(f"nothing fetched: all {outcome.downloads.failed} request(s) failed")
