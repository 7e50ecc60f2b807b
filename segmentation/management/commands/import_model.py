from django.core.management.base import BaseCommand, CommandError

from segmentation.services.model_transfer import TransferError, version_import


class Command(BaseCommand):
    help = ("Install a model version from a file written by export_model. Checks the hashes of the weights "
            "and the manifest and refuses a version already installed.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--name", help="install under this name instead of the exported one")

    def handle(self, *args, **o):
        try:
            version = version_import(path=o["file"], name=o["name"])
        except TransferError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"imported {version.name} (weights sha256 {version.weights_sha256}, "
                          f"{'active' if version.is_active else 'not active; activate it in the admin'})")
