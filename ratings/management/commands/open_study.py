from django.core.management.base import BaseCommand, CommandError

from ratings.jobs import study_render_enqueue
from ratings.management.commands._study import plan_line, study_named
from ratings.models import Assignment
from ratings.selectors.studies import items_plan
from ratings.services.studies import StudyError, study_acknowledge_shortfall, study_open


class Command(BaseCommand):
    help = ("Open a draft study: the same pre-opening check as the admin's \"Open the study\" button (the same "
            "service), then the design is frozen, every assignment generated and its panels queued for rendering.")

    def add_arguments(self, parser):
        parser.add_argument("study", help="the study's name or number")
        parser.add_argument("--override-reason", default="",
                            help="why to open despite a check that allows an override (logged)")
        parser.add_argument("--accept-shortfall", action="store_true",
                            help="accept fewer items than planned (logged), as the admin's button does")

    def handle(self, *args, study, override_reason, accept_shortfall, **o):
        study = study_named(study)
        plan = items_plan(study)
        self.stdout.write(plan_line(plan))
        try:
            if accept_shortfall and plan["shortfall"] and not plan["acknowledged"]:
                study_acknowledge_shortfall(study=study)
                self.stdout.write(f"accepted {study.shortfall_acknowledged} items instead of {study.planned_items}")
            study_open(study=study, override_reason=override_reason.strip())
        except StudyError as exc:
            raise CommandError(f"not opened: {exc}") from exc
        job = study_render_enqueue(study=study)
        self.stdout.write(f"{study.name!r} is open: {Assignment.objects.filter(study=study).count()} assignments "
                          f"for {study.planned_raters} raters; panel rendering queued (job {job}). "
                          f"Make links with: python manage.py invite {study.pk} --n {study.planned_raters}")
