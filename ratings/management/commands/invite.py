from django.core.management.base import BaseCommand, CommandError

from ratings.management.commands._study import study_named
from ratings.selectors.studies import invitation_url
from ratings.services.raters import invitations_create
from ratings.services.studies import StudyError


class Command(BaseCommand):
    help = ("Make N invitation links to a study and print them, one absolute URL a line (the site address is "
            "the EVALSITE_BASE_URL setting). The admin's \"Make invitations\" button does the same.")

    def add_arguments(self, parser):
        parser.add_argument("study", help="the study's name or number")
        parser.add_argument("--n", type=int, required=True, help="how many links")
        parser.add_argument("--max-uses", type=int, default=1, help="how many people each link lets in")
        parser.add_argument("--note", default="", help="a note kept with each link (e.g. who it is for)")

    def handle(self, *args, study, n, max_uses, note, **o):
        study = study_named(study)
        try:
            made = invitations_create(study=study, n=n, max_uses=max_uses, note=note[:200])
        except StudyError as exc:
            raise CommandError(str(exc)) from exc
        for invitation in made:
            self.stdout.write(invitation_url(invitation))
        if study.state == "draft":
            self.stderr.write(self.style.WARNING(f"{study.name!r} is a draft: the links work once it is open"))
