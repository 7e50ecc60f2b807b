from django.core.management.base import BaseCommand, CommandError

from segmentation.models import ModelVersion
from segmentation.services.model_transfer import TransferError, version_export


class Command(BaseCommand):
    help = ("Write a model version (weights, configuration, training manifest, metrics, provenance) to one "
            "zip file that import_model reads on another installation.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="model version name")
        parser.add_argument("--out", required=True, help="file to write, e.g. unet-v3.zip")

    def handle(self, *args, **o):
        version = ModelVersion.objects.filter(name=o["name"]).first()
        if version is None:
            known = ", ".join(ModelVersion.objects.values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"no model version {o['name']!r} (known: {known})")
        try:
            header = version_export(version=version, out=o["out"])
        except (TransferError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"wrote {o['out']}: {version.name}, weights sha256 {header['weights_sha256']}")
