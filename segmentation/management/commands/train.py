import argparse

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from evalcore.unet.augment import SWITCHES
from evalcore.unet.model import INPUT_NORMS, UNetConfig
from segmentation import jobs
from segmentation.models import Image, TrainingRun
from segmentation.services import training


class Command(BaseCommand):
    help = ("Train the U-Net on the volunteer masks (train/val splits; test held out) and create a model version. "
            "Runs here with a progress bar, or with --enqueue as a job on the 'training' queue.")

    def add_arguments(self, parser):
        parser.add_argument("--encoder", default="resnet18")
        parser.add_argument("--image-size", type=int, default=UNetConfig.image_size,
                            help=f"network input size, px (multiple of 32; default {UNetConfig.image_size})")
        parser.add_argument("--field-of-view", type=float, default=UNetConfig.field_of_view, metavar="FRACTION",
                            help="fraction of each image's side the network sees, centred (masks are 0 outside; "
                                 f"default {UNetConfig.field_of_view:g}; docs/unet.md)")
        parser.add_argument("--epochs", type=int, default=30)
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument("--learning-rate", type=float, default=1e-3)
        parser.add_argument("--loss", choices=["l1", "mse", "bce"], default=UNetConfig.loss,
                            help=f"default {UNetConfig.loss} (docs/unet.md: why not the study's l1)")
        parser.add_argument("--input-norm", choices=INPUT_NORMS, default=UNetConfig.input_norm,
                            help="percentile (default): each image stretched between its own percentiles; none: "
                                 "pixels / 255, as the study did (docs/unet.md)")
        parser.add_argument("--no-augment", default="", metavar="NAMES",
                            help=f"training augmentations to leave out, comma-separated: {', '.join(SWITCHES)} "
                                 "(all are on by default; docs/unet.md)")
        parser.add_argument("--patience", type=int, default=10)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--empty-bar-teaches-no-bar", action=argparse.BooleanOptionalAction,
                            default=UNetConfig.empty_bar_teaches_no_bar,
                            help="asked-but-empty bar maps teach 'no bar' (default; --no-... leaves them out of "
                                 "the loss, as the study did)")
        parser.add_argument("--synthetic", choices=["only", "exclude", "any"], default="any")
        parser.add_argument("--labels", choices=["volunteers", "truth"], default="volunteers",
                            help="learn from the volunteers' masks (default) or, on a synthetic survey, from the "
                                 "true masks: the ceiling of what the images allow (docs/measurements.md)")
        parser.add_argument("--limit", type=int, help="at most this many galaxies (for quick trials)")
        parser.add_argument("--image-kind", default="survey_cutout", choices=Image.Kind.values)
        parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                            help="stop after the epoch that passes this much training time (best checkpoint kept)")
        parser.add_argument("--threads", type=int, help="torch threads for this process")
        parser.add_argument("--enqueue", action="store_true", help="run as a background job instead")
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="continue this run from its checkpoint")

    def handle(self, *args, **o):
        if o["resume"]:
            run = TrainingRun.objects.filter(pk=o["resume"]).first()
            if run is None:
                raise CommandError(f"no training run {o['resume']}")
            if o["enqueue"]:
                jobs.training_resume(run=run)
                self.stdout.write(f"run {run.pk} queued to resume")
                return
        else:
            left_out = [name.strip() for name in o["no_augment"].split(",") if name.strip()]
            unknown = [name for name in left_out if name not in SWITCHES]
            if unknown:
                raise CommandError(f"unknown augmentation(s) {', '.join(unknown)} for --no-augment; known: "
                                   f"{', '.join(SWITCHES)}")
            config = {"encoder": o["encoder"], "image_size": o["image_size"], "field_of_view": o["field_of_view"],
                      "epochs": o["epochs"], "batch_size": o["batch_size"], "learning_rate": o["learning_rate"],
                      "loss": o["loss"], "patience": o["patience"], "seed": o["seed"],
                      "empty_bar_teaches_no_bar": o["empty_bar_teaches_no_bar"], "input_norm": o["input_norm"],
                      **{name: False for name in left_out}}
            selection = {"image_kind": o["image_kind"],
                         "synthetic": {"only": True, "exclude": False}.get(o["synthetic"])}
            if o["limit"]:
                selection["limit"] = o["limit"]
            try:
                if o["labels"] == "truth":
                    selection["label_producer"] = training.truth_producer().pk
                start = jobs.training_launch if o["enqueue"] else training.training_start
                run = start(config=config, selection=selection, requested_by="command line",
                            time_budget_s=o["time_budget"])
            except (TypeError, ValueError) as exc:
                raise CommandError(str(exc)) from exc
            if o["enqueue"]:
                self.stdout.write(f"training run {run.pk} queued on 'training'; watch it in the admin")
                return
        bar = tqdm(total=run.total_epochs, desc=f"training run {run.pk}", unit="epoch", initial=run.current_epoch)

        def on_epoch(report):
            bar.update(report.epoch - bar.n)
            bar.set_postfix(train=f"{report.train_loss:.4f}", val=f"{report.val_loss:.4f}")

        try:
            run = training.run_train(run_id=run.pk, threads=o["threads"], on_epoch=on_epoch)
        except Exception as exc:
            raise CommandError(f"training run {run.pk} failed: {exc}") from exc
        finally:
            bar.close()
        self.stdout.write(f"training run {run.pk}: {run.status}")
        version = run.modelversion_set.first()
        if version:
            self.stdout.write(f"model version {version.name} (active: {version.is_active})")
