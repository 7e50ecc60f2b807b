"""A rater's reads: their membership, assignments, sequence and progress.
"""
from __future__ import annotations

from django.http import Http404

from ratings.models import Assignment, Rater, Study


def rater_for(user, study: Study) -> Rater | None:
    if not user.is_authenticated:
        return None
    return Rater.objects.filter(study=study, user=user).first()


def assignment_for(user, token: str) -> Assignment:
    """The assignment behind a token, only for the rater it belongs to (404 for everybody else, so a
    token reveals nothing about whether it exists)."""
    a = (Assignment.objects.select_related("study", "rater", "item").filter(token=token, rater__user=user).first()
         if user.is_authenticated else None)
    if a is None:
        raise Http404("no such item")
    return a


def sequence(rater: Rater):
    return Assignment.objects.filter(rater=rater).order_by("position")


def progress(rater: Rater) -> dict:
    seq = sequence(rater)
    total = seq.count()
    done = seq.filter(submitted_at__isnull=False).count()
    return {"done": done, "total": total, "percent": round(100 * done / total) if total else 100}


def next_assignment(rater: Rater) -> Assignment | None:
    return sequence(rater).filter(submitted_at__isnull=True).first()
