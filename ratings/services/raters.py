"""Raters: invitations, signing up and joining a study, consent and profile.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from evalsite.accounts import SignUpForm
from ratings.models import (
    Assignment,
    Invitation,
    Rater,
    Study,
)
from ratings.services.studies import StudyError, _log


def invitations_create(*, study: Study, n: int, note: str = "", max_uses: int = 1, user=None) -> list[Invitation]:
    """``n`` new invitation links to ``study``, each usable ``max_uses`` times (logged)."""
    if not isinstance(n, int) or not 1 <= n <= 1000:
        raise StudyError("make between 1 and 1000 invitations at a time")
    if not isinstance(max_uses, int) or max_uses < 1:
        raise StudyError("an invitation must be usable at least once")
    if study.state == Study.State.CLOSED:
        raise StudyError("the study is closed: nobody can join it any more")
    made = [Invitation.objects.create(study=study, note=note, max_uses=max_uses) for _ in range(n)]
    _log(study, "invitations made", user, {"n": n, "max_uses": max_uses, "note": note})
    return made


# --- raters --------------------------------------------------------------------------------------------
def invitation_problem(invitation: Invitation) -> str | None:
    """Why an invitation link cannot bring a new rater in (used up, study not open, no place left), or None."""
    study = invitation.study
    if invitation.uses >= invitation.max_uses:
        return "This invitation link is not valid any more: it has been used. Ask the study's organisers for a new one."
    if study.state != Study.State.OPEN:
        return "This study is not open for rating."
    if Rater.objects.filter(study=study).count() >= (study.planned_raters or 0):
        return "Every planned rater place of this study is taken."
    return None


def rater_join(*, study: Study, user, invitation: Invitation | None = None) -> Rater:
    """Make ``user`` a rater of ``study`` (idempotent) and give them the first free design slot."""
    existing = Rater.objects.filter(study=study, user=user).first()
    if existing:
        return existing
    if study.state != Study.State.OPEN:
        raise StudyError("this study is not open for rating")
    with transaction.atomic():
        if invitation is not None:
            inv = Invitation.objects.select_for_update().get(pk=invitation.pk)
            if inv.study_id != study.pk or inv.uses >= inv.max_uses:
                raise StudyError("this invitation link is not valid any more")
            inv.uses += 1
            inv.save(update_fields=["uses"])
        taken = set(Rater.objects.filter(study=study).values_list("slot", flat=True))
        free = [s for s in range(study.planned_raters or 0) if s not in taken]
        if not free:
            raise StudyError("every planned rater place of this study is taken")
        rater = Rater.objects.create(study=study, user=user, slot=free[0], is_staff=user.is_staff,
                                     pseudonym=f"R{free[0] + 1:03d}")
        Assignment.objects.filter(study=study, slot=free[0]).update(rater=rater)
    return rater


class SignUpRefused(StudyError):
    """The join form's data cannot make an account; ``form`` carries the messages per field."""

    def __init__(self, form):
        super().__init__("the account could not be created")
        self.form = form

    @property
    def username_unavailable(self) -> bool:
        return any(e.code == "unavailable" for e in self.form.errors.as_data().get("username", []))


def rater_sign_up(*, invitation: Invitation, data) -> Rater:
    """A new account from the join form's ``data`` (username, password1, password2), made a rater of the
    invitation's study in the same transaction: a used-up invitation, a study that is not open or full,
    or a refused form creates no account. Raises StudyError (SignUpRefused for the form's own messages)."""
    problem = invitation_problem(invitation)
    if problem:
        raise StudyError(problem)
    form = SignUpForm(data)
    if not form.is_valid():
        raise SignUpRefused(form)
    with transaction.atomic():
        user = form.save()
        return rater_join(study=invitation.study, user=user, invitation=invitation)


def rater_consent(*, rater: Rater) -> Rater:
    if rater.consented_at is None:
        rater.consented_at = timezone.now()
        rater.save(update_fields=["consented_at"])
    return rater


def rater_profile(*, rater: Rater, career_stage: str, experience: str, helped_build: bool) -> Rater:
    if career_stage not in Rater.Career.values or experience not in Rater.Experience.values:
        raise StudyError("choose a career stage and an experience level from the lists")
    rater.career_stage, rater.experience, rater.helped_build = career_stage, experience, bool(helped_build)
    rater.save(update_fields=["career_stage", "experience", "helped_build"])
    return rater
