"""Pages raters use. Thin: they read through selectors, write through services, render templates.

Blinding: nothing here sends a source, producer, file name or storage URL to a rater. Panels are
addressed by the rater's opaque assignment token and the panel's position; images are bytes served by
the site with neutral headers.
"""
from __future__ import annotations

import functools
import random
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from evalcore import vocabulary
from evalsite import ratelimit
from evalsite.accounts import SignUpForm
from ratings.models import BlindingGuess, Candidate, Invitation, Item, Quality, Rater, Study
from ratings.selectors.assignments import assignment_for, next_assignment, progress, rater_for, sequence
from ratings.services import panels
from ratings.services.answers import COMMENT_MAX_CHARS, answer_submit_form, form_number, practice_check
from ratings.services.raters import (
    SignUpRefused,
    invitation_problem,
    rater_consent,
    rater_join,
    rater_profile,
    rater_sign_up,
)
from ratings.services.studies import StudyError

GUESS_CHOICES = [("volunteers", "Citizen-science volunteers"), ("model", "A deep-learning model"),
                 ("sparcfire", "An arc-finding algorithm"), ("unknown", "I can't tell")]
BLINDING_PANELS = 3
SHORTCUTS = [("← / →", "previous / next panel"), ("1 2 3", "rank the focused panel (same number = can't decide)"),
             ("P W O F", "quality: Perfectly / Mostly well / Mostly poorly / Totally failed"),
             ("V", "overlay on / off"), ("[ ]", "overlay opacity"), ("+ −", "zoom"), ("S", "image stretch"),
             ("X", "flag a bad or ambiguous image"), ("C", "comment"), ("Enter", "save and go on"),
             ("B", "back to the previous item")]


def server_timing(view):
    """Adds ``Server-Timing: view;dur=<ms>`` so latency can be measured on the server side
    (bench/rating_latency.py); it covers the view, its queries and its template."""
    @functools.wraps(view)
    def timed(request, *args, **kwargs):
        start = time.perf_counter()
        response = view(request, *args, **kwargs)
        response["Server-Timing"] = f"view;dur={(time.perf_counter() - start) * 1000:.2f}"
        return response
    return timed


def _study_and_rater(request, study_id: int) -> tuple[Study, Rater]:
    study = get_object_or_404(Study, pk=study_id)
    rater = rater_for(request.user, study)
    if rater is None:
        raise Http404("you are not a rater of this study")
    return study, rater


def neutral_png(data: bytes) -> HttpResponse:
    """Image bytes with headers that say nothing about which mask it is or when it was made."""
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@login_required
def home(request):
    raters = Rater.objects.filter(user=request.user).select_related("study")
    rows = [{"rater": r, "study": r.study, "progress": progress(r)} for r in raters]
    return render(request, "ratings/home.html", {"rows": rows})


@require_http_methods(["GET", "POST"])
def join(request, token: str):
    """Sign up (or log in) from an invitation link. A link that cannot bring a new rater in says so before
    any form; the sign-up and the joining are one step, so a refused join leaves no account behind."""
    invitation = get_object_or_404(Invitation, token=token)
    study = invitation.study
    if request.user.is_authenticated:
        try:
            rater_join(study=study, user=request.user, invitation=invitation)
        except StudyError as exc:
            return _message(request, study, str(exc), status=400)
        return redirect("ratings:study", study_id=study.pk)
    problem = invitation_problem(invitation)
    if problem:
        return _message(request, study, problem, status=400)
    form = SignUpForm()
    if request.method == "POST":
        # a refused name counts against the address like a failed log-in, so names cannot be probed faster
        # than passwords can be guessed
        if ratelimit.blocked_by(request, "", counters=("address",)):
            return ratelimit.too_many_response(request, "address")
        try:
            rater = rater_sign_up(invitation=invitation, data=request.POST)
        except SignUpRefused as exc:
            if exc.username_unavailable:
                ratelimit.record_failure(request, "", counters=("address",))
            form = exc.form
        except StudyError as exc:
            return _message(request, study, str(exc), status=400)
        else:
            login(request, rater.user, backend=settings.AUTHENTICATION_BACKENDS[0])
            return redirect("ratings:study", study_id=study.pk)
    return render(request, "ratings/join.html", {"study": study, "form": form})


def _message(request, study: Study, message: str, status: int = 200):
    return render(request, "ratings/message.html", {"title": study.name, "message": message}, status=status)


@server_timing
@login_required
def study_entry(request, study_id: int):
    """Send the rater to the next step: consent, profile, guide, practice, items, blinding check, done."""
    study, rater = _study_and_rater(request, study_id)
    if rater.consented_at is None:
        return redirect("ratings:consent", study_id=study.pk)
    if not rater.profile_complete:
        return redirect("ratings:profile", study_id=study.pk)
    if rater.practice_done_at is None:
        return redirect("ratings:guide", study_id=study.pk)
    nxt = next_assignment(rater)
    if nxt is not None and study.state == Study.State.OPEN:
        return redirect("ratings:item", token=nxt.token)
    if nxt is None and study.state == Study.State.OPEN and _guess_candidates(rater):
        return redirect("ratings:blinding", study_id=study.pk)
    structures = dict(Item._meta.get_field("structure").choices)
    answered = [{"position": i + 1, "token": token, "structure": structures.get(structure, structure),
                 "submitted": submitted is not None}
                for i, (token, structure, submitted) in enumerate(
                    sequence(rater).values_list("token", "item__structure", "submitted_at"))]
    return render(request, "ratings/done.html", {"study": study, "progress": progress(rater),
                                                 "answered": answered})


@login_required
@require_http_methods(["GET", "POST"])
def consent(request, study_id: int):
    study, rater = _study_and_rater(request, study_id)
    if request.method == "POST":
        if request.POST.get("agree") != "yes":
            messages.error(request, "Please tick the box to agree, or close this page to leave the study.")
        else:
            rater_consent(rater=rater)
            return redirect("ratings:study", study_id=study.pk)
    return render(request, "ratings/consent.html", {"study": study})


@login_required
@require_http_methods(["GET", "POST"])
def profile(request, study_id: int):
    study, rater = _study_and_rater(request, study_id)
    if request.method == "POST":
        helped = request.POST.get("helped_build")
        try:
            if helped not in ("yes", "no"):
                raise StudyError("please say whether you helped build any of the compared methods")
            rater_profile(rater=rater, career_stage=request.POST.get("career_stage", ""),
                          experience=request.POST.get("experience", ""), helped_build=helped == "yes")
            return redirect("ratings:study", study_id=study.pk)
        except StudyError as exc:
            messages.error(request, str(exc))
    return render(request, "ratings/profile.html", {"study": study, "rater": rater, "careers": Rater.Career.choices,
                                                    "experiences": Rater.Experience.choices})


@login_required
def guide(request, study_id: int):
    study, rater = _study_and_rater(request, study_id)
    examples = []
    for structure in study.structures:
        if panels.reference_mask(study, structure) is not None:
            label = dict(Item._meta.get_field("structure").choices).get(structure, structure)
            examples.append({"structure": structure, "label": label,
                             "levels": [(q, dict(Quality.choices)[q]) for q in panels.REFERENCE_LEVELS]})
    return render(request, "ratings/guide.html", {"study": study, "qualities": list(reversed(Quality.choices)),
                                                  "examples": examples})


@login_required
def guide_png(request, study_id: int, structure: str, level: int, variant: str):
    study, rater = _study_and_rater(request, study_id)
    if structure not in study.structures or level not in panels.REFERENCE_LEVELS:
        raise Http404("no such picture")
    try:
        return neutral_png(panels.reference_png(study, structure, level, variant))
    except (LookupError, ValueError):
        raise Http404("no such picture") from None


def _practice_items(study: Study) -> list[Item]:
    """The practice items made when the study opened (galaxies that are not items of the study)."""
    return list(study.items.filter(kind=Item.Kind.PRACTICE).order_by("id"))


@login_required
@require_http_methods(["GET", "POST"])
def practice(request, study_id: int, n: int):
    """Practice items look like real ones; answers are checked for completeness but never stored."""
    study, rater = _study_and_rater(request, study_id)
    items = _practice_items(study)

    def finished():
        if rater.practice_done_at is None:
            rater.practice_done_at = timezone.now()
            rater.save(update_fields=["practice_done_at"])
        return redirect("ratings:study", study_id=study.pk)

    if not items or n >= len(items):
        return finished()
    item = items[n]
    cands = sorted(item.candidates.all(), key=lambda c: c.pk)
    random.Random(f"{rater.pk}-{item.pk}").shuffle(cands)
    posted = None
    if request.method == "POST":
        try:
            practice_check(data=request.POST, n_panels=len(cands))
            return finished() if n + 1 >= len(items) else redirect("ratings:practice", study_id=study.pk, n=n + 1)
        except StudyError as exc:
            messages.error(request, str(exc))
            posted = request.POST
    context = _item_context(study, item, len(cands), practice=True)

    def picture(name):
        return reverse("ratings:practice-png", kwargs={"study_id": study.pk, "n": n, "name": name})

    context.update({"practice_n": n + 1, "practice_total": len(items),
                    "panels": [{"index": i, "letter": chr(65 + i),
                                "mask_url": picture(f"p{i}-mask"), "layer_url": picture(f"p{i}-layer"),
                                **_shown_choice(posted, i, None),
                                "empty": panels.is_blank(c)}
                               for i, c in enumerate(cands)],
                    "image_url": picture("image-colour").removesuffix("colour.png")})
    if posted is not None:
        context.update(comment=posted.get("comment", ""), flagged=posted.get("flag") == "on")
    return render(request, "ratings/item.html", context)


@login_required
def practice_png(request, study_id: int, n: int, name: str):
    study, rater = _study_and_rater(request, study_id)
    items = _practice_items(study)
    if n >= len(items):
        raise Http404("no such picture")
    cands = sorted(items[n].candidates.all(), key=lambda c: c.pk)
    random.Random(f"{rater.pk}-{items[n].pk}").shuffle(cands)
    return _serve_panel(cands, name)


def _serve_panel(cands: list[Candidate], name: str) -> HttpResponse:
    """``p<i>-<variant>`` for a panel, ``image-<variant>`` for the galaxy picture."""
    try:
        if name.startswith("image-"):
            return neutral_png(panels.candidate_png(panels.image_candidate(cands), name.removeprefix("image-")))
        index, variant = name[1:].split("-", 1)
        if not name.startswith("p") or variant not in panels.MASK_VARIANTS:
            raise ValueError
        return neutral_png(panels.candidate_png(cands[int(index)], variant))
    except (ValueError, IndexError):
        raise Http404("no such picture") from None


def _shown_choice(posted, i: int, stored) -> dict:
    """The rank and quality a panel shows: what the rater just sent when the save was refused (so nothing
    they entered is lost), else the stored answer."""
    if posted is not None:
        return {"rank": form_number(posted.get(f"rank_{i}")),
                "quality": form_number(posted.get(f"quality_{i}"))}
    return {"rank": stored.rank if stored else None, "quality": stored.quality if stored else None}


def _item_context(study: Study, item: Item, n_panels: int, practice: bool = False) -> dict:
    return {"study": study, "structure": item.get_structure_display(), "structure_key": item.structure,
            "n_panels": n_panels, "ranks": range(1, n_panels + 1), "qualities": vocabulary.QUALITY_KEYS,
            "shortcuts": SHORTCUTS, "practice": practice, "comment_max": COMMENT_MAX_CHARS,
            "stretches": [("colour", "colour"), ("asinh", "asinh"), ("linear", "linear"), ("log", "log")]}


@server_timing
@login_required
@require_http_methods(["GET", "POST"])
def item(request, token: str):
    assignment = assignment_for(request.user, token)
    study, rater = assignment.study, assignment.rater
    if study.state != Study.State.OPEN:
        return render(request, "ratings/message.html", {"title": study.name, "message": "This study is closed."})
    n = len(assignment.panel_order)
    posted = None
    if request.method == "POST":
        try:
            answer_submit_form(assignment=assignment, data=request.POST)
            return redirect("ratings:study", study_id=study.pk)
        except StudyError as exc:
            messages.error(request, str(exc))
            posted = request.POST
    if assignment.first_shown_at is None:
        type(assignment).objects.filter(pk=assignment.pk).update(first_shown_at=timezone.now())
    previous = {a.panel_position: a for a in assignment.answers.all()}
    # one query for the place in the sequence and the progress bar
    seq = list(sequence(rater).values_list("token", "submitted_at"))
    index = [t for t, _ in seq].index(token)
    done = sum(1 for _, at in seq if at is not None)
    progress = {"done": done, "total": len(seq), "percent": round(100 * done / len(seq))}
    # A panel with nothing drawn says "nothing marked", whatever its source (decided from the picture itself).
    shown = {c.pk: c for c in Candidate.objects.filter(pk__in=assignment.panel_order)
             .select_related("mask", "mask__image", "item__study", "producer")}
    context = _item_context(study, assignment.item, n)

    def picture(name):
        return reverse("ratings:item-png", kwargs={"token": token, "name": name})

    context.update({
        "assignment": assignment, "progress": progress, "position": index + 1,
        "previous_token": seq[index - 1][0] if index > 0 else None,
        "panels": [{"index": i, "letter": chr(65 + i), "mask_url": picture(f"p{i}-mask"),
                    "layer_url": picture(f"p{i}-layer"),
                    **_shown_choice(posted, i, previous.get(i)),
                    "empty": panels.is_blank(shown[assignment.panel_order[i]])} for i in range(n)],
        "image_url": picture("image-colour").removesuffix("colour.png"),  # + the stretch's name + ".png"
        "comment": posted.get("comment", "") if posted is not None else assignment.comment,
        "flagged": posted.get("flag") == "on" if posted is not None else assignment.flagged_bad_image,
    })
    return render(request, "ratings/item.html", context)


@login_required
def item_png(request, token: str, name: str):
    assignment = assignment_for(request.user, token)
    by_id = {c.pk: c for c in Candidate.objects.filter(pk__in=assignment.panel_order)
             .select_related("mask", "mask__image", "item__study")}
    return _serve_panel([by_id[c] for c in assignment.panel_order], name)


def _guess_candidates(rater: Rater) -> list[BlindingGuess]:
    """A few panels the rater saw, drawn once per rater; returns the unanswered ones."""
    if not BlindingGuess.objects.filter(rater=rater).exists():
        seen = [cid for a in sequence(rater).filter(item__kind=Item.Kind.REAL) for cid in a.panel_order]
        # a panel with nothing drawn tells nothing about its source: an all-black picture is never asked about
        shown = {c.pk: c for c in Candidate.objects.filter(pk__in=seen).select_related("mask", "item__study")}
        marked = [cid for cid in dict.fromkeys(seen) if not panels.is_blank(shown[cid])]
        seen = marked or seen
        chosen = random.Random(f"blinding-{rater.pk}").sample(seen, min(BLINDING_PANELS, len(seen)))
        BlindingGuess.objects.bulk_create([BlindingGuess(rater=rater, candidate_id=c) for c in chosen],
                                          ignore_conflicts=True)
    return list(BlindingGuess.objects.filter(rater=rater, answered_at__isnull=True).order_by("pk"))


@login_required
@require_http_methods(["GET", "POST"])
def blinding(request, study_id: int):
    study, rater = _study_and_rater(request, study_id)
    if next_assignment(rater) is not None:  # asked only at the end: it must not prime the ratings
        return redirect("ratings:study", study_id=study.pk)
    pending = _guess_candidates(rater)
    # Only the kinds of source this study compares are offered (plus "I can't tell"), so chance is one
    # over their number, as the blinding audit assumes (ratings/export.guess_rows).
    kinds = set(study.sources.values_list("kind", flat=True))
    choices = [(k, label) for k, label in GUESS_CHOICES if k in kinds or k == "unknown"]
    if request.method == "POST" and pending:
        valid = {k for k, _ in choices}
        if request.POST.get("skip") == "1":
            BlindingGuess.objects.filter(pk__in=[g.pk for g in pending]).update(answered_at=timezone.now(),
                                                                               guessed_kind="skipped")
        else:
            # optional question: a panel left without a choice counts as skipped, so Send never loops back
            for g in pending:
                choice = request.POST.get(f"guess_{g.token}")
                BlindingGuess.objects.filter(pk=g.pk).update(guessed_kind=choice if choice in valid else "skipped",
                                                             answered_at=timezone.now())
        return redirect("ratings:study", study_id=study.pk)
    return render(request, "ratings/blinding.html", {"study": study, "guesses": pending, "choices": choices})


@login_required
def blinding_png(request, study_id: int, token: str):
    study, rater = _study_and_rater(request, study_id)
    guess = get_object_or_404(BlindingGuess, rater=rater, token=token)
    return neutral_png(panels.candidate_png(guess.candidate, "mask"))
