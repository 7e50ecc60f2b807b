from django.core.management.base import BaseCommand, CommandError

from evalcore import vocabulary
from ratings.management.commands._study import plan_line
from ratings.models import Study
from ratings.selectors.studies import items_plan, producers_named, study_galaxies
from ratings.services.studies import StudyError, study_check, study_choose_galaxies, study_create, study_update
from segmentation.management.commands._options import add_split_argument
from segmentation.models import ModelVersion


class Command(BaseCommand):
    help = ("Create a draft rating study and choose its galaxies, as the admin's study page does (the same "
            "services and checks). Sources are named by producer name (or \"name version\") or model version "
            "name. Galaxies: --names, or a seeded --sample of N, or every galaxy matching --synthetic/--split. "
            "Open it with open_study, then make links with invite.")

    def add_arguments(self, parser):
        parser.add_argument("name", help="the study's name (unique)")
        parser.add_argument("--question", required=True, help="the pre-registered primary question")
        parser.add_argument("--structures", nargs="+", choices=vocabulary.STRUCTURES, required=True)
        parser.add_argument("--sources", nargs="+", required=True, metavar="SOURCE",
                            help="2 or 3 sources: producer name, \"name version\", or model version name")
        parser.add_argument("--calibration", action="store_true",
                            help="a calibration study: the synthetic truth may be one of the sources")
        parser.add_argument("--names", nargs="+", help="exactly these galaxies")
        parser.add_argument("--sample", type=int, metavar="N", help="a seeded random sample of N galaxies")
        parser.add_argument("--seed", type=int, default=0, help="seed of the sample and of the design")
        parser.add_argument("--synthetic", choices=["only", "exclude", "any"], default="any")
        add_split_argument(parser)
        parser.add_argument("--test-split-of", metavar="MODEL_VERSION",
                            help="the compared model version: --split test then means the galaxies it did not "
                                 "train or tune on, and opening refuses its training galaxies")
        parser.add_argument("--raters-per-item", type=int, default=3)
        parser.add_argument("--planned-raters", type=int, help="default: raters per item")
        parser.add_argument("--planned-items", type=int,
                            help="default: the sample size (or the number of names) times the structures")
        parser.add_argument("--stopping-rule", default="Every item rated by its planned number of raters.")
        parser.add_argument("--display", choices=Study.Display.values, default=Study._meta.get_field("display").default)
        parser.add_argument("--threshold", type=float, default=0.5, help="the binary display's threshold")
        parser.add_argument("--practice-items", type=int, default=3)
        parser.add_argument("--instructions", default="")

    def handle(self, *args, **o):
        if o["names"] and o["sample"]:
            raise CommandError("give either --names or --sample, not both")
        for key in ("sample", "raters_per_item", "planned_raters", "planned_items"):
            if o[key] is not None and o[key] < 1:
                raise CommandError(f"--{key.replace('_', '-')} must be at least 1")
        if not 0 <= o["threshold"] <= 1:
            raise CommandError("--threshold lies between 0 and 1")
        try:
            sources = producers_named(o["sources"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        version = None
        if o["test_split_of"]:
            version = ModelVersion.objects.filter(name=o["test_split_of"]).first()
            if version is None:
                raise CommandError(f"no model version {o['test_split_of']!r}")
        mode = "names" if o["names"] else "sample" if o["sample"] else "filter"
        wanted_galaxies = len(o["names"]) if o["names"] else o["sample"]
        planned_items = o["planned_items"] or (wanted_galaxies * len(set(o["structures"])) if wanted_galaxies else None)
        settings = {"primary_question": o["question"], "raters_per_item": o["raters_per_item"],
                    "planned_raters": o["planned_raters"] or o["raters_per_item"], "planned_items": planned_items,
                    "stopping_rule": o["stopping_rule"], "display": o["display"], "threshold": o["threshold"],
                    "practice_items": o["practice_items"], "seed": o["seed"], "instructions": o["instructions"],
                    "test_split_of": version}
        try:
            study = study_create(name=o["name"], structures=o["structures"], sources=sources,
                                          calibration=o["calibration"], **settings)
        except StudyError as exc:
            raise CommandError(str(exc)) from exc
        try:
            galaxies, record = study_galaxies(study, mode=mode, n=o["sample"], seed=o["seed"],
                                                        names=o["names"] or (), synthetic=o["synthetic"],
                                                        split=o["split"])
            if not galaxies:
                raise ValueError("no galaxy matches the selection")
            n = study_choose_galaxies(study=study, galaxies=galaxies, selection=record)
        except (ValueError, StudyError) as exc:
            study.delete()  # a study without its galaxies is not what was asked for
            raise CommandError(f"{exc} (no study was created)") from exc
        if planned_items is None:
            study_update(study=study, planned_items=n)
        self.stdout.write(f"study {study.pk} {study.name!r} (draft): {', '.join(str(p) for p in sources)}; "
                          f"{', '.join(study.structures)}")
        plan = items_plan(study)
        self.stdout.write(plan_line(plan))
        check = study_check(study=study)
        for problem in check.blocking:
            self.stdout.write(self.style.WARNING(f"before opening: {problem}"))
        if plan["shortfall"]:
            self.stdout.write(self.style.WARNING(
                f"open it with: python manage.py open_study {study.pk} --accept-shortfall (or choose again)"))
