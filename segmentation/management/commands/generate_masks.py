from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from segmentation import jobs
from segmentation.management.commands._options import add_selection_arguments, selection_from_options
from segmentation.models import GenerationRun, Image, ModelVersion
from segmentation.selectors.galaxies import selected_queryset
from segmentation.services import generation, input_checks, quality_gate


class Command(BaseCommand):
    help = ("Generate masks for a galaxy selection with the model or the arc finder. Runs here chunk by chunk "
            "with a progress bar, or with --enqueue as jobs on the 'generation' queue shared by all workers. "
            "Galaxies that already have these masks are skipped.")

    def add_arguments(self, parser):
        parser.add_argument("--source", choices=["model", "sparcfire"], required=True)
        parser.add_argument("--model-version", help="name of the model version (default: the active one)")
        add_selection_arguments(parser)
        parser.add_argument("--image-kind", default="survey_cutout", choices=Image.Kind.values)
        parser.add_argument("--chunk-size", type=int, default=generation.DEFAULT_CHUNK_SIZE)
        parser.add_argument("--enqueue", action="store_true", help="enqueue the chunks instead of running here")
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="re-enqueue a run's unfinished chunks")
        parser.add_argument("--allow-ungated", action="store_true",
                            help="use a model version that has not passed the quality gate (its masks are "
                                 "stored like any other; the run records that the version was not gated)")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **o):
        if o["resume"]:
            run = GenerationRun.objects.filter(pk=o["resume"]).first()
            if run is None:
                raise CommandError(f"no generation run {o['resume']}")
            self.stdout.write(f"{jobs.generation_resume(run=run)} chunks of run {run.pk} queued again")
            return
        version = None
        if o["source"] == "model":
            qs = ModelVersion.objects.all()
            version = (qs.filter(name=o["model_version"]) if o["model_version"] else qs.filter(is_active=True)).first()
            if version is None:
                raise CommandError(f"no model version {o['model_version']!r}" if o["model_version"]
                                   else "no active model version: train one first (python manage.py train)")
            if not quality_gate.passed(version):
                why = quality_gate.summary(version)
                if not o["allow_ungated"]:
                    raise CommandError(f"model version {version.name} {why}. Its masks would enter catalogues and "
                                       "studies as this model's; nothing generated. Train or evaluate it again, "
                                       "or pass --allow-ungated to generate them anyway.")
                self.stdout.write(self.style.WARNING(f"WARNING: model version {version.name} {why}; generating "
                                                     "anyway (--allow-ungated)"))
        try:
            ids = list(selected_queryset(selection_from_options(o)).values_list("pk", flat=True))
            start = jobs.generation_launch if o["enqueue"] else generation.generation_start
            run = start(
                source=o["source"], galaxies=ids, model_version=version,
                image_kind=o["image_kind"], chunk_size=o["chunk_size"],
                selection={"names": o["names"], "synthetic": o["synthetic"], "split": o["split"],
                           **({"quality_gate": quality_gate.summary(version)} if version is not None else {})},
                requested_by="command line",
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"generation run {run.pk}: {run.total} galaxies to do "
                          f"({run.selection.get('already_done', 0)} already done), {run.chunks.count()} chunks")
        for line in input_checks.summary_lines(run.input_checks):
            self.stdout.write(self.style.WARNING(line))
        if o["enqueue"] or not run.total:
            return
        with tqdm(total=run.total, desc=f"{o['source']} masks", unit="galaxy",
                  disable=o["no_progress"]) as bar:
            for chunk in run.chunks.order_by("index"):
                chunk = generation.chunk_process(chunk_id=chunk.pk)
                bar.update(chunk.done + chunk.failed + chunk.skipped)
        run.refresh_from_db()
        progress = generation.run_progress(run=run)
        self.stdout.write(f"run {run.pk} {run.status}: {progress['done']} done, {progress['skipped']} skipped, "
                          f"{progress['failed']} failed")
        for chunk in run.chunks.exclude(failures=[]):
            for f in chunk.failures:
                self.stdout.write(f"  FAILED {f['galaxy']}: {f['reason']}")
