from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evalcore.synthetic import survey, volunteers


class Command(BaseCommand):
    help = ("Write a synthetic survey with known ground truth: per galaxy a GZ3D-layout file with simulated "
            "volunteers and a g,r,z survey cutout, plus cutouts.csv and survey.json (crowd statistics). "
            "Deterministic for a given seed and model versions. See docs/synthetic.md.")

    def add_arguments(self, parser):
        parser.add_argument("--n", type=int, required=True, help="Number of galaxies (> 0).")
        parser.add_argument("--seed", type=int, default=0, help="Random seed (default %(default)s).")
        parser.add_argument("--size", type=int, default=256,
                            help=f"Image size in px, {survey.MIN_SIZE}..{survey.MAX_SIZE} (default %(default)s).")
        parser.add_argument("--out", required=True, help="Output folder (created if absent).")
        parser.add_argument("--crowd", choices=list(volunteers.CROWDS), default="default",
                            help="Simulated volunteers: default, or biased (systematic errors).")
        parser.add_argument("--volunteers", type=int, default=volunteers.DEFAULT_VOLUNTEERS,
                            help="Classifications per drawing task (default %(default)s).")
        parser.add_argument("--workers", type=int, default=0,
                            help="Worker processes (default: one per core, at most 8).")
        parser.add_argument("--import", dest="import_", action="store_true",
                            help="Afterwards, import the survey into the database through the real importers.")
        parser.add_argument("--gallery", metavar="FILE.png",
                            help="Also save a PNG of 16 galaxies with their volunteer masks and truth.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, n, seed=0, size=256, out, crowd="default", volunteers=volunteers.DEFAULT_VOLUNTEERS,
               workers=0, import_=False, gallery=None, no_progress=False, **options):
        if workers < 0:
            raise CommandError(f"--workers must be >= 0, got {workers}")
        if gallery and not str(gallery).lower().endswith(".png"):
            raise CommandError(f"--gallery must name a .png file, got {gallery}")
        settings = survey.SurveySettings(n=n, seed=seed, size=size, out=Path(out), crowd=crowd,
                                         volunteers=volunteers)
        try:
            survey.check_settings(settings)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        with tqdm(total=n, desc="synthetic galaxies", unit="galaxy", disable=no_progress) as bar:
            try:
                summary = survey.make_survey(settings, workers=workers or None, progress=bar.update)
            except survey.SurveyError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"wrote {n} galaxies to {out} (seed {seed}, {size} px, crowd {crowd})")
        for line in survey.crowd_summary_lines(summary["crowd_statistics"]):
            self.stdout.write(line)
        if gallery:
            from evalcore.synthetic.gallery import gallery_png

            try:
                Path(gallery).write_bytes(gallery_png(out))
            except OSError as exc:
                raise CommandError(f"--gallery {gallery}: cannot write ({exc.strerror})") from None
            self.stdout.write(f"gallery saved to {gallery}")
        if import_:
            from segmentation.services.imports.synthetic import import_synthetic_survey

            result = import_synthetic_survey(directory=out, progress=not no_progress)
            for line in result.lines():
                self.stdout.write(line)
            self.stdout.write(f"(synthetic import batch #{result.batch.pk})")
