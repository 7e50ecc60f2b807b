import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from segmentation.management.commands._options import add_split_argument
from segmentation.models import Image, Producer
from segmentation.selectors.galaxies import SYNTHETIC_CHOICES
from segmentation.services.comparisons import (
    DEFAULT_SOURCES,
    chirality_with_truth,
    compare_with_catalogue,
    compare_with_truth,
    write_agreement,
)


class Command(BaseCommand):
    help = ("Agreement of stored measurements with a reference catalogue (--catalogue NAME --quantity Q) or with "
            "the truth of synthetic galaxies (--truth), per mask source: bias, scatter, MAE, Pearson r, robust "
            "slope, N; written to --out as CSV files and a scatter plot with the 1:1 line, plus the galaxies left "
            "out with their reasons. Run measure_masks first.")

    def add_arguments(self, parser):
        ref = parser.add_mutually_exclusive_group(required=True)
        ref.add_argument("--catalogue", help="Name given to import_reference_catalogue.")
        ref.add_argument("--truth", action="store_true", help="Synthetic galaxies against their truth.")
        parser.add_argument("--quantity", help="The catalogue quantity (e.g. bar_length); with --catalogue.")
        parser.add_argument("--measured", help="Measured attribute to compare (default from the quantity's unit: "
                                               "kpc -> length_kpc, arcsec -> length_arcsec, pitch -> pitch_abs); "
                                               "e.g. deprojected_length_kpc.")
        parser.add_argument("--radius", type=float, default=10.0, help="Match radius, arcsec (default 10).")
        parser.add_argument("--source", action="append", choices=Producer.Kind.values,
                            help="Mask sources to report (repeatable; default model, volunteers, sparcfire).")
        parser.add_argument("--synthetic", choices=SYNTHETIC_CHOICES, default="any",
                            help="With --catalogue: synthetic galaxies only, excluded, or any.")
        parser.add_argument("--min-arm-contrast", type=float, default=None,
                            help="With --truth: pitch only for galaxies whose true arm contrast is at least this.")
        add_split_argument(parser)
        parser.add_argument("--image-kind", choices=Image.Kind.values,
                            help="Only masks on this kind of image (default: all; a galaxy with masks on two "
                                 "images then counts once per image).")
        parser.add_argument("--out", required=True, help="Directory for the report files.")

    def handle(self, *args, catalogue, truth, quantity, measured, radius, source, synthetic, min_arm_contrast,
               split, image_kind, out, **options):
        sources = source or list(DEFAULT_SOURCES)
        if radius <= 0:
            raise CommandError(f"--radius must be a positive number of arcsec, got {radius}")
        try:
            if truth:
                self._truth(sources, min_arm_contrast, split, image_kind, Path(out))
            else:
                if not quantity:
                    raise CommandError("--catalogue needs --quantity (a quantity mapped at import)")
                reports = compare_with_catalogue(
                    catalogue=catalogue, quantity=quantity, measured=measured, radius_arcsec=radius,
                    sources=sources, synthetic=synthetic, split=split, image_kind=image_kind)
                stem = f"{catalogue}_{quantity}".replace("/", "_").replace(" ", "_")
                self._write(reports, Path(out), stem, f"{quantity}: {catalogue}")
        except ValueError as exc:
            raise CommandError(str(exc)) from None

    def _truth(self, sources, min_arm_contrast, split, image_kind, out: Path):
        for quantity in ("bar_length_kpc", "bar_length_deprojected_kpc", "bar_profile_length_kpc",
                         "bar_profile_length_deprojected_kpc", "pitch_abs"):
            reports = compare_with_truth(
                quantity=quantity, sources=sources, split=split, image_kind=image_kind,
                min_arm_contrast=min_arm_contrast if quantity == "pitch_abs" else None)
            self._write(reports, out, f"truth_{quantity}", f"{quantity} against the synthetic truth")
        chir = chirality_with_truth(sources=sources, split=split, image_kind=image_kind)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "truth_chirality.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["source", "n", "n_agree", "fraction", "n_excluded"])
            for label, rep in chir.items():
                w.writerow([label, rep.n, rep.n_agree, "" if rep.fraction is None else rep.fraction,
                            len(rep.excluded)])
                self.stdout.write(f"chirality {label}: {rep.n_agree} of {rep.n} agree with the truth")
        with (out / "truth_chirality_excluded.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["source", "key", "reason"])
            for label, rep in chir.items():
                for e in rep.excluded:
                    w.writerow([label, e["key"], e["reason"]])

    def _write(self, reports, out: Path, stem: str, title: str):
        paths = write_agreement(reports=reports, out_dir=out, stem=stem, title=title)
        for label, rep in reports.items():
            stats = (f"bias {rep.bias:.3g}, scatter {rep.scatter:.3g}, MAE {rep.mean_abs_error:.3g}, "
                     f"r {rep.pearson_r:.3f}, slope {rep.robust_slope:.3f}"
                     if None not in (rep.bias, rep.scatter, rep.mean_abs_error, rep.pearson_r, rep.robust_slope)
                     else "; ".join(rep.notes))
            self.stdout.write(f"{stem} {label}: N {rep.n} ({len(rep.excluded)} left out) {stats} [{rep.unit}]")
        self.stdout.write("wrote " + ", ".join(str(p) for p in paths))
