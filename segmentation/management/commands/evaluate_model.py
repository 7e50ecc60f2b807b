from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evalcore.vocabulary import SPLITS, STRUCTURES
from segmentation.models import ModelVersion
from segmentation.selectors.model_versions import version_manifest
from segmentation.services.model_versions import calibration_table, evaluate_version, evaluation_key, summary_rows


class Command(BaseCommand):
    help = ("Quality report of a model version on a split of its training manifest (default: the test split; "
            "thresholds chosen on the validation split): L1, IoU vs volunteers, calibration, IoU vs truth next "
            "to the crowd's, bar detection, with bootstrap intervals. Stored in the version's metrics.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # "--version NAME" names the model version here; Django's own --version (its release) gives way
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--version", "--model-version", dest="model_version",
                            help="model version name (default: the active one)")
        parser.add_argument("--split", choices=SPLITS, default="test")
        parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap draws (default 2000)")
        parser.add_argument("--limit", type=int, help="at most this many galaxies per split (quick look)")
        parser.add_argument("--calibration", action="store_true", help="also print the reliability curves")

    def handle(self, *args, **o):
        qs = ModelVersion.objects.all()
        version = (qs.filter(name=o["model_version"]) if o["model_version"] else qs.filter(is_active=True)).first()
        if version is None:
            raise CommandError(f"no model version {o['model_version']!r}" if o["model_version"]
                               else "no active model version: train or import one first")
        if o["n_boot"] < 100:
            raise CommandError(f"--n-boot {o['n_boot']} is too few for a 95% interval; use at least 100")
        galaxies = [g for g in version_manifest(version)["galaxies"]
                    if g["split"] in {"val", o["split"]}]
        with tqdm(total=len(galaxies), desc=f"evaluating {version.name}", unit="galaxy") as bar:
            try:
                report = evaluate_version(version=version, split=o["split"], n_boot=o["n_boot"],
                                          progress=bar.update, limit=o["limit"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        p = report["predictions"]
        self.stdout.write(f"{version.name}: {o['split']} split, {report['n_test']} galaxies "
                          f"(thresholds from {report['n_val']} validation galaxies); predictions: "
                          f"{p['stored_masks']} stored masks, {p['computed']} computed now"
                          + (f" ({p['runtime']['mode']})" if p["runtime"] else ""))
        if report["n_skipped"]:
            self.stdout.write(f"{report['n_skipped']} galaxies left out, e.g. {report['skipped'][0]['galaxy']}: "
                              f"{report['skipped'][0]['reason']}")
        rows = summary_rows(report)
        width = max(len(r[1]) for r in rows) if rows else 10
        self.stdout.write(f"\n{'structure':<10} {'quantity':<{width}}  value [95% interval]")
        for st, name, value in rows:
            self.stdout.write(f"{st:<10} {name:<{width}}  {value}")
        if o["calibration"]:
            for st in STRUCTURES:
                self.stdout.write(f"\nreliability curve, {st}: predicted bin, mean predicted, mean observed, pixels")
                for row in calibration_table(report, st):
                    self.stdout.write("  {:<9} {:>7} {:>7} {:>9}".format(*row))
        self.stdout.write(f"\nstored in metrics[{evaluation_key(o['split'])!r}] of {version.name}")
