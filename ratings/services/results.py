"""A study's results for staff: progress, the cached statistics tables and figures, and the unlock.

The statistics (``evalcore.study.stats.summary_tables``) take seconds on a large study, so they are computed
once per state of the data and kept in media storage (``ratings-results/study-<id>/<fingerprint>/``, through
Django's storage API, so a web host sees what a worker on another machine computed): a pickle of the
tables and one PNG per figure, named by a fingerprint of everything the statistics read (answers,
assignments' time/flags, raters, guesses). A page view only recomputes after that data changed.

Outcome figures are hidden while a study is open (no peeking, no optional stopping); they show once it
is closed, or earlier when an admin unlocks them, which is stored on the study and logged.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass

import pandas as pd
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from evalcore.study import plots
from evalcore.study.stats import summary_tables
from ratings.models import Answer, Assignment, BlindingGuess, Rater, Study, StudyLog
from ratings.services import exports

CACHE_DIR = "ratings-results"
# bump when summary_tables or the figures change shape, so old caches are not served
CACHE_FORMAT = 1
# Above this many answers a cold dashboard view queues the computation (seconds to a minute) instead of
# making the request wait for it; below, it computes at once (a second or two).
INLINE_MAX_ANSWERS = 20_000
PENDING_SECONDS = 15 * 60  # a queued computation not done by then is queued again
UNLOCK_ACTION = "results unlocked"
EXPORTS = {
    "raw": "one row per (rater, item, candidate)",
    "guesses": "one row per blinding guess",
    "summary": "every statistics table, one CSV with a table column",
    "revisions": "one row per changed answer: the values it had before, and when",
}


class ResultsError(ValueError):
    """A results action that is not allowed in the study's current state."""


def outcomes_visible(study: Study) -> bool:
    """True once the study is closed or an admin unlocked its results early."""
    return study.state == Study.State.CLOSED or study.results_unlocked_at is not None


def results_unlock(*, study: Study, user=None, reason: str) -> Study:
    """Show the outcome figures of a study before it closes. Recorded on the study (results_unlocked_at)
    and in its log with who, when, why and how many answers there were, so the look is on the record."""
    reason = (reason or "").strip()
    if not reason:
        raise ResultsError("give a reason for unlocking the results early; it is logged")
    with transaction.atomic():
        locked = Study.objects.select_for_update().get(pk=study.pk)
        if locked.state == Study.State.DRAFT:
            raise ResultsError("a draft study has no results to unlock")
        if outcomes_visible(locked):
            raise ResultsError("the results of this study are already visible")
        locked.results_unlocked_at = timezone.now()
        locked.save(update_fields=["results_unlocked_at"])
        StudyLog.objects.create(
            study=locked, user=getattr(user, "username", "") or "", action=UNLOCK_ACTION, reason=reason,
            detail={"state": locked.state, "answers": Answer.objects.filter(assignment__study=locked).count(),
                    "raters": locked.raters.count()})
    study.results_unlocked_at = locked.results_unlocked_at
    return study


# --- progress (always visible: counts only, no outcome) -----------------------------------------------
@dataclass
class RaterProgress:
    pseudonym: str
    is_staff: bool
    done: int
    total: int
    median_seconds: float | None
    total_seconds: float

    @property
    def percent(self) -> float:
        return 100.0 * self.done / self.total if self.total else 0.0


@dataclass
class Progress:
    raters: list[RaterProgress]
    planned_raters: int
    slots_claimed: int
    assignments_done: int
    assignments_total: int
    assignments_unclaimed: int
    answers: int
    guesses: int

    @property
    def percent(self) -> float:
        return 100.0 * self.assignments_done / self.assignments_total if self.assignments_total else 0.0


def progress(study: Study) -> Progress:
    """Items done of total per rater and overall, and seconds per item: what staff may see while a study
    is open. Times are seconds per submitted item (s)."""
    assignments = Assignment.objects.filter(study=study)
    total = assignments.aggregate(n=Count("id"), done=Count("id", filter=Q(submitted_at__isnull=False)),
                                  unclaimed=Count("id", filter=Q(rater__isnull=True)))
    seconds: dict[int, list[float]] = {}
    for rater_id, s in assignments.filter(submitted_at__isnull=False, rater__isnull=False).values_list(
            "rater_id", "seconds_spent"):
        seconds.setdefault(rater_id, []).append(s)
    rows = []
    for r in (Rater.objects.filter(study=study).order_by("pseudonym")
              .annotate(total=Count("assignments"),
                        done=Count("assignments", filter=Q(assignments__submitted_at__isnull=False)))):
        times = seconds.get(r.pk, [])
        rows.append(RaterProgress(pseudonym=r.pseudonym, is_staff=r.is_staff, done=r.done, total=r.total,
                                  median_seconds=float(pd.Series(times).median()) if times else None,
                                  total_seconds=float(sum(times))))
    return Progress(
        raters=rows, planned_raters=study.planned_raters or 0, slots_claimed=len(rows),
        assignments_done=total["done"], assignments_total=total["n"], assignments_unclaimed=total["unclaimed"],
        answers=Answer.objects.filter(assignment__study=study).count(),
        guesses=BlindingGuess.objects.filter(rater__study=study, answered_at__isnull=False).count(),
    )


# --- cached statistics ----------------------------------------------------------------------------------
def data_fingerprint(study: Study, **options) -> str:
    """A short hash of everything the statistics read, from a few aggregate queries (no row scan in
    Python): changes whenever an answer, a rater, a guess, an item's time or flag, or the options change."""
    answers = Answer.objects.filter(assignment__study=study).aggregate(
        n=Count("id"), last=Max("updated_at"), edits=Sum("edits"), maxid=Max("id"))
    assignments = Assignment.objects.filter(study=study).aggregate(
        seconds=Sum("seconds_spent"), flagged=Count("id", filter=Q(flagged_bad_image=True)),
        submitted=Count("id", filter=Q(submitted_at__isnull=False)), last=Max("submitted_at"))
    raters = Rater.objects.filter(study=study).aggregate(
        n=Count("id"), staff=Count("id", filter=Q(is_staff=True)), maxid=Max("id"))
    guesses = BlindingGuess.objects.filter(rater__study=study).aggregate(
        n=Count("id", filter=Q(answered_at__isnull=False)), last=Max("answered_at"))
    sources = sorted(study.sources.values_list("pk", "kind", "name", "version"))
    key = repr((CACHE_FORMAT, study.pk, study.name, answers, assignments, raters, guesses, sources,
                sorted(options.items())))
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def cache_dir(study: Study) -> str:
    """The study's folder in media storage (a storage name, not a path)."""
    return f"{CACHE_DIR}/study-{study.pk}"


@dataclass
class Results:
    fingerprint: str
    tables: dict[str, pd.DataFrame]
    plots: dict[str, str]  # plot name -> storage name of its PNG
    computed: bool  # False when served from the cache


def _write(name: str, data: bytes) -> None:
    """Write a file into media storage under exactly ``name`` (replacing it)."""
    if default_storage.exists(name):
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:  # another process wrote it in between: theirs is the same content
        default_storage.delete(saved)


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def _listing(folder: str) -> tuple[list[str], list[str]]:
    try:
        return default_storage.listdir(folder)
    except FileNotFoundError:
        return [], []


def _delete_tree(folder: str) -> None:
    dirs, files = _listing(folder)
    for f in files:
        default_storage.delete(f"{folder}/{f}")
    for d in dirs:
        _delete_tree(f"{folder}/{d}")
    try:  # a file system storage keeps the emptied folder; object stores have none
        os.rmdir(default_storage.path(folder))
    except (NotImplementedError, OSError):
        pass


def study_results(study: Study, *, n_boot: int = 200, seed: int = 20231205, with_plots: bool = True) -> Results:
    """The summary tables (and figures) of a study, from the cache when the data did not change since
    they were computed, else computed now and cached (older caches of the study are removed)."""
    fingerprint = data_fingerprint(study, n_boot=n_boot, seed=seed)
    folder = f"{cache_dir(study)}/{fingerprint}"
    tables_file = f"{folder}/tables.pickle"
    done_marker = f"{folder}/plots.done"
    tables = _cached_tables(tables_file)
    if tables is not None and (default_storage.exists(done_marker) or not with_plots):
        return Results(fingerprint, tables, _plot_files(folder), computed=False)
    if tables is None:
        tables = summary_tables(exports.answers_frame(study), exports.guesses_frame(study), n_boot=n_boot,
                                seed=seed)
        _write(tables_file, pickle.dumps(tables, protocol=pickle.HIGHEST_PROTOCOL))
    if with_plots:
        for name, png in plots.all_plots(tables).items():
            _write(f"{folder}/{name}.png", png)
        _write(done_marker, b"")
    dirs, files = _listing(cache_dir(study))
    for old in dirs:
        if old != fingerprint:
            _delete_tree(f"{cache_dir(study)}/{old}")
    for old in files:
        name = f"{cache_dir(study)}/{old}"
        if old.startswith("pending-") and (old == f"pending-{fingerprint}" or _age_s(name) > PENDING_SECONDS):
            default_storage.delete(name)
    return Results(fingerprint, tables, _plot_files(folder), computed=True)


def _cached_tables(name: str) -> dict | None:
    """The cached tables, or None when absent or unreadable (another process still writing them)."""
    try:
        return pickle.loads(_read(name))
    except (FileNotFoundError, EOFError, pickle.UnpicklingError):
        return None


def _age_s(name: str) -> float:
    return (timezone.now() - default_storage.get_modified_time(name)).total_seconds()


def cached_results(study: Study, *, n_boot: int = 200, seed: int = 20231205) -> Results | None:
    """The tables and figures of the study's current data if they are in the cache, else None (no work)."""
    fingerprint = data_fingerprint(study, n_boot=n_boot, seed=seed)
    folder = f"{cache_dir(study)}/{fingerprint}"
    if not default_storage.exists(f"{folder}/plots.done"):
        return None
    tables = pickle.loads(_read(f"{folder}/tables.pickle"))
    return Results(fingerprint, tables, _plot_files(folder), computed=False)


def pending_marker(study: Study) -> str:
    """The storage name of the marker saying a computation of the study's current data is queued."""
    return f"{cache_dir(study)}/pending-{data_fingerprint(study, n_boot=200, seed=20231205)}"


def results_pending(study: Study) -> bool:
    marker = pending_marker(study)
    return default_storage.exists(marker) and _age_s(marker) < PENDING_SECONDS


def results_mark_pending(study: Study) -> None:
    _write(pending_marker(study), b"")


def _plot_files(folder: str) -> dict[str, str]:
    _dirs, files = _listing(folder)
    return {name: f"{folder}/{name}.png" for name in plots.PLOTS if f"{name}.png" in files}


def cached_plot(study: Study, fingerprint: str, name: str) -> str | None:
    """The storage name of one figure's PNG of one cached computation, or None (unknown name or fingerprint)."""
    if name not in plots.PLOTS or not fingerprint.isalnum():
        return None
    path = f"{cache_dir(study)}/{fingerprint}/{name}.png"
    return path if default_storage.exists(path) else None


# --- CSV exports ----------------------------------------------------------------------------------------
def export_lines(study: Study, kind: str):
    """The CSV lines of one export kind (``raw``, ``guesses``, ``summary`` or ``revisions``); the command writes the
    same lines, so a file and a download are byte for byte equal."""
    if kind == "raw":
        return exports.csv_lines(exports.answer_rows(study), exports.RAW_COLUMNS)
    if kind == "guesses":
        return exports.csv_lines(exports.guess_rows(study), exports.GUESS_COLUMNS)
    if kind == "revisions":
        return exports.csv_lines(exports.revision_rows(study), exports.REVISION_COLUMNS)
    if kind == "summary":
        tables = study_results(study, with_plots=False).tables
        return exports.csv_lines(exports.summary_rows(tables), exports.summary_columns(tables))
    raise ValueError(f"unknown export {kind!r}; choose one of {', '.join(EXPORTS)}")


def export_filename(study: Study, kind: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in study.name)
    return f"study-{study.pk}-{safe}-{kind}.csv"
