import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evalcore.measure import MEASUREMENT_CODE_VERSION
from segmentation import jobs
from segmentation.management.commands._options import add_selection_arguments
from segmentation.models import Image, MaskMeasurement, MeasurementRun, Producer, RunStatus
from segmentation.selectors.measurements import masks_selection
from segmentation.services import measurement_runs
from segmentation.services.measurements import measure_selection, settings_cosmology


class Command(BaseCommand):
    help = ("Measure bars (length in px, arcsec, kpc; projected and deprojected) and spiral arms (number, pitch "
            "angle, chirality) on the current masks and store the results per mask with the code version. "
            "Runs here, or with --enqueue as a measurement run whose chunks go to the 'generation' queue shared "
            "by all workers (the command follows its progress; Ctrl-C stops following, not the run). "
            "Idempotent: masks already measured with the same inputs are left alone.")

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=Producer.Kind.values, help="Only masks of this producer kind.")
        parser.add_argument("--structure", choices=MaskMeasurement.Kind.values, help="Only bar or spiral masks.")
        add_selection_arguments(parser)
        parser.add_argument("--image-kind", choices=Image.Kind.values, help="Only masks on this kind of image.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")
        parser.add_argument("--enqueue", action="store_true",
                            help="start a measurement run whose chunks the workers share, instead of measuring here")
        parser.add_argument("--resume", type=int, metavar="RUN_ID",
                            help="re-enqueue the unfinished chunks of a measurement run (after a crash or a stall)")
        parser.add_argument("--chunk-size", type=int, default=measurement_runs.DEFAULT_CHUNK_SIZE,
                            help=f"masks per chunk with --enqueue (default {measurement_runs.DEFAULT_CHUNK_SIZE})")
        parser.add_argument("--detach", action="store_true",
                            help="with --enqueue or --resume: return at once instead of following the run")

    def handle(self, *args, source, structure, synthetic, names, split, image_kind, no_progress, enqueue,
                resume, chunk_size, detach, **options):
        if resume:
            run = MeasurementRun.objects.filter(pk=resume).first()
            if run is None:
                raise CommandError(f"no measurement run {resume}")
            self.stdout.write(f"{jobs.measurement_resume(run=run)} chunks of measurement run {run.pk} "
                              f"queued again")
            if not detach:
                self.follow(run, no_progress)
            return
        if enqueue:
            try:
                run = jobs.measurement_launch(
                    source=source, structure=structure, synthetic=synthetic, names=names, split=split,
                    image_kind=image_kind, chunk_size=chunk_size, requested_by="command line")
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"measurement run {run.pk}: {run.total} masks in {run.chunks.count()} chunks "
                              f"queued with {MEASUREMENT_CODE_VERSION}")
            if not detach:
                self.follow(run, no_progress)
            return
        try:
            masks = masks_selection(source=source, structure=structure, synthetic=synthetic,
                                    names=names, split=split, image_kind=image_kind)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        cosmology = settings_cosmology()
        total = masks.count()
        self.stdout.write(f"measuring {total} current masks with {MEASUREMENT_CODE_VERSION} "
                          f"(H0 {cosmology.H0:g}, Om0 {cosmology.Om0:g})")
        with tqdm(total=total, desc="masks", unit="mask", disable=no_progress) as bar:
            summary = measure_selection(masks=masks, cosmology=cosmology, progress=bar.update)
        for line in summary.lines():
            self.stdout.write(line)

    def follow(self, run: MeasurementRun, no_progress: bool, poll_s: float = 1.0) -> None:
        """A progress bar over the run's masks until it ends (Ctrl-C stops following only)."""
        try:
            with tqdm(total=run.total, desc=f"run {run.pk} masks", unit="mask", disable=no_progress) as bar:
                while True:
                    run.refresh_from_db()
                    progress = measurement_runs.run_progress(run=run)
                    bar.update(progress["processed"] - bar.n)
                    bar.set_postfix_str(f"{progress['failed']} failed" + (", stalled" if progress["stalled"] else ""))
                    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
                        break
                    time.sleep(poll_s)
        except KeyboardInterrupt:
            self.stdout.write(f"stopped following; measurement run {run.pk} goes on on the workers "
                              "(its status: the admin's measurement runs)")
            return
        c = progress["counts"]
        self.stdout.write(f"measurement run {run.pk} {run.status}: {progress['processed']} of {progress['total']} "
                          f"masks (created {c['created']}, updated {c['updated']}, unchanged {c['unchanged']}, "
                          f"failed {progress['failed']}); {c['measured']} with a value, {c['not_measured']} without")
        for f in measurement_runs.run_failures(run=run):
            self.stdout.write(f"  FAILED mask {f['mask']} ({f['galaxy']} {f['structure']}): {f['reason']}")
        if run.error:
            self.stdout.write(run.error)
