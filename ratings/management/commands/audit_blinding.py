import json as _json

from django.core.management.base import BaseCommand, CommandError

from ratings.models import Study
from ratings.services import blinding_audit


class Command(BaseCommand):
    help = ("The machine blinding audit of a study: from exactly the bytes raters receive (both pictures of "
            "every panel and its HTML), a classifier cross-validated with galaxies grouped tries to name each "
            "panel's source from presentation features; prints its accuracy with a 95%% interval against "
            "chance, the features that leak most, and separately how the masks differ in content. Exits 1 when "
            "the presentation audit is above chance. --display audits another display of the same masks "
            "(nothing is stored); --all-displays audits each.")

    def add_arguments(self, parser):
        parser.add_argument("study", help="The study's id or name.")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--display", choices=blinding_audit.DISPLAYS,
                           help="Audit this display instead of the study's.")
        which.add_argument("--all-displays", action="store_true", help="Audit every display of the same masks.")
        parser.add_argument("--json", action="store_true", help="Print the full result as JSON.")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, study, display, all_displays, seed: int, **options):
        found = (Study.objects.filter(pk=int(study)).first() if study.isdigit() else None) \
            or Study.objects.filter(name=study).first()
        if found is None:
            names = ", ".join(f"{s.pk}: {s.name}" for s in Study.objects.order_by("pk")[:20]) or "none"
            raise CommandError(f"no study with id or name {study!r} (studies: {names})")
        displays = blinding_audit.DISPLAYS if all_displays else [display or found.display]
        leaked = False
        for d in displays:
            if d == found.display and not all_displays and not display:
                result = blinding_audit.study_audit(found, refresh=found.state == Study.State.DRAFT)
            else:
                result = blinding_audit.run(found, d, seed=seed)
            leaked |= d == found.display and blinding_audit.leaks(result)
            if options["json"]:
                self.stdout.write(_json.dumps(result, indent=2, default=str))
            else:
                self.stdout.write(f"Blinding audit of study {found.name!r}" + (" (study's own display)"
                                                                                 if d == found.display else ""))
                for line in blinding_audit.report_lines(result):
                    self.stdout.write(line)
        if leaked:
            raise CommandError("the presentation of the study's panels gives their source away (see above)",
                               returncode=1)

