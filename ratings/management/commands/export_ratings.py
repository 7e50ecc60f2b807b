import os
import secrets
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ratings.models import Answer, AnswerRevision, BlindingGuess, Study
from ratings.services import results


def _new_part_file(path: Path) -> tuple[int, str]:
    """A new, empty ``.<name>.<random>.part`` file beside ``path``, open for writing. Made with mode 0666
    less the umask, as any file the user writes (``tempfile.mkstemp`` would make it 0600 whatever the
    umask, and the rename would keep that)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue


class Command(BaseCommand):
    help = ("Write a study's ratings as CSV (UTF-8, header row, formula-injection safe): by default the raw "
            "answers, one row per (rater, item, candidate); --summary every statistics table (one CSV with a "
            "'table' column); --guesses the blinding guesses; --revisions the history of changed answers. The "
            "bytes equal the dashboard's download; the file's permissions follow the umask.")

    def add_arguments(self, parser):
        parser.add_argument("study", help="The study's id or name.")
        parser.add_argument("--out", required=True, help="Output CSV file (written whole or not at all).")
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--summary", action="store_true", help="Every statistics table instead of raw rows.")
        what.add_argument("--guesses", action="store_true", help="The blinding guesses instead of raw rows.")
        what.add_argument("--revisions", action="store_true",
                          help="Every earlier value of a changed answer (one row per AnswerRevision) instead of "
                               "raw rows.")
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, study, out, summary, guesses, revisions, no_progress, **options):
        found = (Study.objects.filter(pk=int(study)).first() if study.isdigit() else None) \
            or Study.objects.filter(name=study).first()
        if found is None:
            names = ", ".join(f"{s.pk}: {s.name}" for s in Study.objects.order_by("pk")[:20]) or "none"
            raise CommandError(f"no study with id or name {study!r} (studies: {names})")
        if not results.outcomes_visible(found):
            raise CommandError(f"the outcomes of study {found.name!r} are hidden while it is {found.state}: close "
                               "it, or unlock its results on the staff dashboard (logged), first")
        kind = "summary" if summary else "guesses" if guesses else "revisions" if revisions else "raw"
        if kind == "raw":
            total, unit = Answer.objects.filter(assignment__study=found).count(), "answer"
        elif kind == "revisions":
            total, unit = AnswerRevision.objects.filter(answer__assignment__study=found).count(), "revision"
        elif kind == "guesses":
            total, unit = BlindingGuess.objects.filter(rater__study=found, answered_at__isnull=False).count(), "guess"
        else:
            total, unit = None, "row"
        path = Path(out)
        if not path.parent.is_dir():
            raise CommandError(f"the folder of {out} does not exist")
        fd, tmp = _new_part_file(path)
        rows = 0
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh, \
                    tqdm(total=total, desc=f"{kind} CSV", unit=unit, disable=no_progress) as bar:
                for i, line in enumerate(results.export_lines(found, kind)):
                    fh.write(line)
                    if i:  # the first line is the header
                        rows += 1
                        bar.update()
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.stdout.write(f"wrote {rows} {kind} rows of study {found.name!r} to {path}")
