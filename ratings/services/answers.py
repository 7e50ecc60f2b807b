"""Answers: a rater's ranks, quality levels, time and comment, checked once here and stored idempotently
(a retried submit writes one record per candidate; an edit keeps the previous values as a revision).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from ratings.models import (
    Answer,
    AnswerRevision,
    Assignment,
    Quality,
    Study,
)
from ratings.services.studies import StudyError


# --- answers -------------------------------------------------------------------------------------------
@dataclass
class PanelAnswer:
    panel_position: int  # 0-based, as shown
    rank: int  # 1 = best
    quality: int  # 0..3


def normalise_ranks(answers: list[PanelAnswer]) -> list[PanelAnswer]:
    """Competition ranking: tied panels share the best rank of their group and the next rank skips
    (1, 1, 3), whatever numbers the rater used for the same order (1, 1, 2 -> 1, 1, 3)."""
    ordered = sorted(answers, key=lambda a: a.rank)
    out, previous, rank = {}, None, 0
    for i, a in enumerate(ordered):
        if a.rank != previous:
            rank, previous = i + 1, a.rank
        out[a.panel_position] = PanelAnswer(a.panel_position, rank, a.quality)
    return [out[a.panel_position] for a in answers]


COMMENT_MAX_CHARS = 2000


SECONDS_CAP = 3600.0  # s per saved item: longer than this is a rater who walked away from the page


_ASCII_NUMBER = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")


def form_number(value) -> int | None:
    """A whole number written in ASCII digits (``"2"``), else None (empty, ``"²"``, ``"٢"``, ``"2.0"``)."""
    text = str(value if value is not None else "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else None


def answers_from_form(data, n_panels: int) -> list[PanelAnswer]:
    """The ranks and quality levels of an item form (``rank_<i>``, ``quality_<i>`` for panel i), checked as
    ``answer_submit`` checks them. Raises StudyError with a message for the rater."""
    answers = []
    for i in range(n_panels):
        letter = chr(65 + i)
        rank_text, quality_text = data.get(f"rank_{i}", ""), data.get(f"quality_{i}", "")
        if not str(rank_text).strip() or not str(quality_text).strip():
            raise StudyError(f"Mask {letter} needs a rank and a quality.")
        rank, quality = form_number(rank_text), form_number(quality_text)
        if rank is None:
            raise StudyError(f"Mask {letter}: the rank must be one of "
                             f"{', '.join(str(r) for r in range(1, n_panels + 1))}.")
        if quality is None:
            raise StudyError(f"Mask {letter}: the quality must be one of the four levels.")
        answers.append(PanelAnswer(i, rank, quality))
    check_answers(answers, n_panels)
    return answers


def check_answers(answers: list[PanelAnswer], n_panels: int) -> None:
    """Every panel once, ranks within 1..n with one panel ranked best, qualities on the scale."""
    positions = sorted(a.panel_position for a in answers)
    if positions != list(range(n_panels)):
        raise StudyError(f"Every one of the {n_panels} masks needs a rank and a quality.")
    for a in answers:
        letter = chr(65 + a.panel_position)
        if a.quality not in Quality.values:
            raise StudyError(f"Mask {letter}: the quality must be one of the four levels.")
        if not 1 <= a.rank <= n_panels:
            raise StudyError(f"Mask {letter}: the rank must be one of "
                             f"{', '.join(str(r) for r in range(1, n_panels + 1))}.")
    if min(a.rank for a in answers) != 1:
        raise StudyError("One mask must be ranked best (rank 1).")


def seconds_on_item(value) -> float:
    """Time on an item as the page reports it (s): a finite number >= 0 in ASCII digits (empty = 0),
    capped at SECONDS_CAP. Raises StudyError for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value if value is not None else "").strip()
        if not text:
            return 0.0
        if not _ASCII_NUMBER.fullmatch(text):
            raise StudyError("The time on this item could not be read. Reload the page and save again.")
        seconds = float(text)
    if not math.isfinite(seconds) or seconds < 0:
        raise StudyError("The time on this item could not be read. Reload the page and save again.")
    return min(seconds, SECONDS_CAP)


def comment_text(value) -> str:
    """The rater's comment with line ends as ``\\n``; refused (never cut) above COMMENT_MAX_CHARS."""
    text = str(value or "").replace("\r\n", "\n")
    if len(text) > COMMENT_MAX_CHARS:
        raise StudyError(f"Your comment has {len(text):,} characters; the limit is {COMMENT_MAX_CHARS:,}. "
                         "Shorten it and save again (nothing was saved).")
    return text


def practice_check(*, data, n_panels: int) -> None:
    """A practice item's form, checked like a real one; nothing is stored."""
    answers_from_form(data, n_panels)


def answer_submit_form(*, assignment: Assignment, data) -> list[Answer]:
    """``answer_submit`` from an item page's form data (ranks, qualities, seconds, comment, flag)."""
    return answer_submit(assignment=assignment, answers=answers_from_form(data, len(assignment.panel_order)),
                         seconds=data.get("seconds"), comment=data.get("comment", ""),
                         flagged_bad_image=data.get("flag") == "on")


def answer_submit(*, assignment: Assignment, answers: list[PanelAnswer], seconds=0.0,
                  comment: str = "", flagged_bad_image: bool = False) -> list[Answer]:
    """Store a rater's answers for one item. Idempotent; changing earlier answers keeps revisions.

    ``seconds`` (time on the page, s; see ``seconds_on_item``) is added to the item's time only when this
    submit stores something new - a first answer, a changed rank or quality, comment or flag - so a
    repeated identical submit adds nothing. A comment longer than COMMENT_MAX_CHARS is refused."""
    study = assignment.study
    if study.state != Study.State.OPEN:
        raise StudyError("The study is closed; answers can no longer change.")
    n = len(assignment.panel_order)
    check_answers(answers, n)
    seconds = seconds_on_item(seconds)
    comment = comment_text(comment)
    flagged_bad_image = bool(flagged_bad_image)
    answers = normalise_ranks(answers)
    rank_counts: dict[int, int] = {}
    for a in answers:
        rank_counts[a.rank] = rank_counts.get(a.rank, 0) + 1
    stored = []
    with transaction.atomic():
        # Write first. SQLite then takes the write lock at once (waiting its turn under the busy timeout);
        # a transaction that read first cannot upgrade its snapshot once another rater has written, and
        # fails at once with "database is locked" (bench/rating_latency.py showed lost answers).
        # On PostgreSQL this update locks the row, as select_for_update would.
        Assignment.objects.filter(pk=assignment.pk).update(
            submitted_at=Coalesce("submitted_at", Value(timezone.now())))
        locked = Assignment.objects.get(pk=assignment.pk)
        changed = (locked.comment, locked.flagged_bad_image) != (comment, flagged_bad_image)
        wanted = {locked.panel_order[a.panel_position]: (a, rank_counts[a.rank] > 1) for a in answers}
        existing = {x.candidate_id: x for x in Answer.objects.filter(assignment=locked)}
        new = [Answer(assignment=locked, candidate_id=cid, panel_position=a.panel_position, rank=a.rank, tied=tied,
                      quality=a.quality) for cid, (a, tied) in wanted.items() if cid not in existing]
        if new:
            changed = True
            # ignore_conflicts: a concurrent duplicate that won the race stays; it is compared below like any
            # earlier answer, so the request still ends with exactly these values and one row per panel
            Answer.objects.bulk_create(new, ignore_conflicts=True)
            created = {x.candidate_id: x for x in Answer.objects.filter(
                assignment=locked, candidate_id__in=[n.candidate_id for n in new])}
        else:
            created = {}
        for cid, (a, tied) in wanted.items():
            obj = existing.get(cid) or created[cid]
            if (obj.rank, obj.tied, obj.quality) != (a.rank, tied, a.quality):
                changed = True
                AnswerRevision.objects.create(answer=obj, rank=obj.rank, tied=obj.tied, quality=obj.quality)
                obj.rank, obj.tied, obj.quality, obj.edits = a.rank, tied, a.quality, obj.edits + 1
                obj.save(update_fields=["rank", "tied", "quality", "edits", "updated_at"])
            stored.append(obj)
        if changed:
            Assignment.objects.filter(pk=assignment.pk).update(
                seconds_spent=F("seconds_spent") + seconds, comment=comment, flagged_bad_image=flagged_bad_image)
    return sorted(stored, key=lambda x: x.panel_position)
