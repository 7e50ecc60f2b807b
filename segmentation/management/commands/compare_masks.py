import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evalcore.vocabulary import STRUCTURES
from segmentation.models import Image, Producer
from segmentation.services.model_versions import MASK_SOURCES, sources_vs_truth


class Command(BaseCommand):
    help = ("Mask IoU against the truth of synthetic galaxies, every source side by side (model versions, "
            "volunteers, SpArcFiRe method): thresholds of fraction maps chosen on the validation split, IoU on "
            "--split with 95%% bootstrap intervals and paired differences between sources. Generate the masks "
            "of both splits first (generate_masks --split val / test).")

    def add_arguments(self, parser):
        parser.add_argument("--structure", choices=STRUCTURES, default="spiral")
        parser.add_argument("--split", choices=("test", "train"), default="test")
        parser.add_argument("--source", action="append", choices=[str(k) for k in MASK_SOURCES],
                            help="mask sources (repeatable; default model, volunteers, sparcfire)")
        parser.add_argument("--image-kind", default="survey_cutout", choices=Image.Kind.values,
                            help="compare the masks on this image of each galaxy (default survey_cutout)")
        parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap draws (default 2000)")
        parser.add_argument("--out", help="also write the report as JSON to this file")

    def handle(self, *args, structure, split, source, image_kind, n_boot, out, **options):
        if n_boot < 100:
            raise CommandError(f"--n-boot {n_boot} is too few for a 95% interval; use at least 100")
        if not Producer.objects.filter(kind=Producer.Kind.TRUTH).exists():
            raise CommandError("no truth masks here: this needs synthetic galaxies (make_synthetic --import)")
        with tqdm(desc=f"gathering {structure} masks", unit="galaxy") as bar:
            report = sources_vs_truth(
                structure=structure, split=split, n_boot=n_boot, image_kind=image_kind,
                sources=source or MASK_SOURCES, progress=bar.update)
        w = self.stdout.write
        w(f"{structure} mask IoU against the truth on the {image_kind} images, {split} split "
          f"({report['n_test_truth']} galaxies with a true "
          f"{structure}; thresholds from {report['n_val_truth']} validation galaxies)")
        width = max([len("source"), *map(len, report["sources"])])
        w(f"  {'source':<{width}} {'threshold':>9}  {'mean IoU [95% CI]':<24} {'n':>5} {'missing':>7}")
        for name, r in report["sources"].items():
            ci = "—" if r["mean"] is None else f"{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
            t = "binary" if r["threshold_from"] == "binary mask" else f"{r['threshold']:.2f}"
            w(f"  {name:<{width}} {t:>9}  {ci:<24} {r['n']:>5} {r['n_missing']:>7}")
        if report["differences"]:
            w("paired differences (a - b, galaxies both have):")
            for d in report["differences"]:
                if d["difference"] is None:
                    w(f"  {d['a']} - {d['b']}: no common galaxies")
                    continue
                verdict = "interval excludes 0" if d["excludes_zero"] else "interval includes 0"
                w(f"  {d['a']} - {d['b']}: {d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] "
                  f"n={d['n']} ({verdict})")
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(json.dumps(report, indent=1))
            w(f"written {out}")
