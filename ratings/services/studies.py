"""Writes of the rating app: study life cycle, joining, answering. Views call these; nothing else writes.

Rules kept here:
- a study's design is pre-registered and frozen when it opens (``study_update`` refuses frozen fields
  unless a reason is given, and logs every change);
- opening checks every candidate, refuses training galaxies unless overridden (logged), and generates the
  whole counterbalanced assignment before anyone rates;
- answers are idempotent: a retried or double-clicked submit writes one record per candidate; edits keep
  the previous values.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from evalcore.study import design
from evalsite.accounts import SignUpForm
from ratings.models import (
    Answer,
    AnswerRevision,
    Assignment,
    Candidate,
    Invitation,
    Item,
    PanelImage,
    Quality,
    Rater,
    Study,
    StudyLog,
)
from segmentation.models import Galaxy, Image, Mask


class StudyError(ValueError):
    """A study action that cannot be done, with the reason."""


def _log(study: Study, action: str, user=None, detail: dict | None = None, reason: str = "") -> None:
    StudyLog.objects.create(study=study, action=action, user=getattr(user, "username", "") or "",
                            detail=detail or {}, reason=reason)


# --- design --------------------------------------------------------------------------------------------
def study_update(*, study: Study, user=None, reason: str = "", **changes) -> Study:
    """Change study settings. After opening, pre-registered fields are refused unless ``reason`` is given;
    every change after drafting is logged."""
    frozen = [f for f in changes if f in Study.FROZEN_FIELDS and getattr(study, f) != changes[f]]
    if study.state != Study.State.DRAFT and frozen and not reason:
        raise StudyError(f"the study is {study.state}: {', '.join(frozen)} are pre-registered and frozen "
                         "(give a reason to override; it is logged)")
    before = {f: getattr(study, f) for f in changes}
    for f, v in changes.items():
        setattr(study, f, v)
    study.save()
    if study.state == Study.State.DRAFT and any(f in DISPLAY_FIELDS and before[f] != changes[f] for f in changes):
        PanelImage.objects.filter(candidate__item__study=study).delete()  # drawn another way now
    if study.state != Study.State.DRAFT:
        _log(study, "changed after opening", user, {"before": before, "after": changes}, reason)
    return study


DISPLAY_FIELDS = ("display", "threshold", "display_overrides", "consensus_level")


def _candidate_mask(galaxy: Galaxy, structure: str, producer) -> Mask | None:
    """The current mask of this source, preferring the survey cutout's grid (the one models read)."""
    masks = Mask.objects.filter(galaxy=galaxy, structure=structure, producer=producer, is_current=True)
    return (masks.filter(image__kind=Image.Kind.SURVEY_CUTOUT).first() or masks.first())


def study_set_items(*, study: Study, galaxies, user=None) -> int:
    """(Re)build the study's real items: one per (galaxy, structure) with one candidate per source."""
    if study.state != Study.State.DRAFT:
        raise StudyError("items can only change while the study is a draft")
    sources = list(study.sources.all())
    with transaction.atomic():
        study.items.all().delete()
        n = 0
        for galaxy in galaxies:
            for structure in study.structures:
                item = Item.objects.create(study=study, galaxy=galaxy, structure=structure)
                for producer in sources:
                    mask = _candidate_mask(galaxy, structure, producer)
                    if mask is not None:
                        Candidate.objects.create(item=item, mask=mask, producer=producer)
                n += 1
    return n


@dataclass
class StudyCheck:
    missing: list[dict] = field(default_factory=list)  # (galaxy, structure, source) without a mask
    empty: list[dict] = field(default_factory=list)  # candidates whose mask has nothing marked
    not_asked: list[dict] = field(default_factory=list)
    training_galaxies: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    blinding: dict = field(default_factory=dict)  # the machine blinding audit (ratings/audit.py)
    levels: dict = field(default_factory=dict)  # each source's marking level per structure

    @property
    def needs_override(self) -> list[str]:
        """What opening needs a logged reason for: a presentation audit above chance."""
        from ratings import audit

        if audit.leaks(self.blinding):
            return [f"the blinding audit names the source above chance ({self.blinding.get('verdict')}); "
                    "opening needs an override with a reason, which is logged"]
        return []

    @property
    def blocking(self) -> list[str]:
        out = list(self.problems)
        if self.missing:
            out.append(f"{len(self.missing)} candidate masks are missing")
        return out


def study_check(*, study: Study, with_audit: bool = True) -> StudyCheck:
    """What must be known before opening: missing and empty candidates, training galaxies, design gaps, each
    source's marking level and the machine blinding audit of the panels (reused until the design changes)."""
    from ratings import audit
    from ratings.services import panels

    check = StudyCheck()
    check.levels = panels.compute_source_levels(study) if study.state == Study.State.DRAFT else \
        panels.source_levels(study)
    sources = list(study.sources.all())
    if not 2 <= len(sources) <= 3:
        check.problems.append(f"a study compares 2 or 3 sources, this one has {len(sources)}")
    for field_name in ("primary_question", "stopping_rule", "planned_items", "planned_raters"):
        if not getattr(study, field_name):
            check.problems.append(f"pre-registration incomplete: {field_name} is not set")
    items = study.items.filter(kind=Item.Kind.REAL).select_related("galaxy").prefetch_related(
        "candidates__mask", "candidates__producer")
    if not items:
        check.problems.append("the study has no items")
    for item in items:
        have = {c.producer_id: c for c in item.candidates.all()}
        grids = {c.mask.image_id for c in have.values()}
        if len(grids) > 1:
            check.problems.append(f"{item.galaxy.name} {item.structure}: candidates lie on different images, "
                                  "so their panels would differ in more than the mask")
        for producer in sources:
            where = {"galaxy": item.galaxy.name, "structure": item.structure, "source": str(producer)}
            cand = have.get(producer.pk)
            if cand is None:
                check.missing.append(where)
            elif cand.mask.state == Mask.State.EMPTY:
                check.empty.append(where)
            elif cand.mask.state == Mask.State.NOT_ASKED:
                check.not_asked.append(where)
    if study.test_split_of_id:
        from segmentation.selectors.model_versions import model_version_splits

        used = {gid for gid, split in model_version_splits(study.test_split_of).items() if split != "test"}
        for item in items:
            if item.galaxy_id in used:
                check.training_galaxies.append(item.galaxy.name)
        check.training_galaxies = sorted(set(check.training_galaxies))
        if check.training_galaxies and not study.training_override:
            check.problems.append(
                f"{len(check.training_galaxies)} galaxies are not in the test split of the compared model "
                "(used for training or tuning); remove them or record an override with a reason")
    if study.planned_raters and study.raters_per_item > study.planned_raters:
        check.problems.append("raters per item exceeds the planned number of raters")
    if with_audit and items:
        check.blinding = audit.study_audit(study)
    return check


def study_open(*, study: Study, user=None, override_reason: str = "") -> Study:
    """Freeze the design (with each source's marking level and the blinding audit), add quality-control
    items and generate every slot's assignment. A presentation audit above chance needs ``override_reason``
    (logged)."""
    if study.state != Study.State.DRAFT:
        raise StudyError(f"only a draft study can be opened; this one is {study.state}")
    check = study_check(study=study)
    if check.blocking:
        raise StudyError("; ".join(check.blocking))
    override_reason = (override_reason or "").strip()
    if check.needs_override and not override_reason:
        raise StudyError("; ".join(check.needs_override))
    rng = random.Random(study.seed)
    with transaction.atomic():
        PanelImage.objects.filter(candidate__item__study=study).delete()  # rendered before the freeze
        study.display_levels = check.levels
        study.blinding_audit = {**check.blinding, "frozen": True}
        study.save(update_fields=["display_levels", "blinding_audit"])
        if check.needs_override:
            _log(study, "blinding audit overridden", user, {"audit": check.blinding.get("verdict"),
                                                            "presentation": check.blinding.get("presentation")},
                 override_reason)
        real = list(study.items.filter(kind=Item.Kind.REAL).prefetch_related("candidates"))
        n_sources = study.sources.count()
        slots = design.assign(n_items=len(real), n_raters=study.planned_raters,
                              raters_per_item=study.raters_per_item, n_sources=n_sources, seed=study.seed)
        orders = design.williams_orders(n_sources)
        by_slot: dict[int, list[tuple[Item, tuple[int, ...]]]] = {}
        for s in slots:
            by_slot.setdefault(s.rater, []).append((real[s.item], s.order))
        most_checks = max((round(study.attention_rate * len(seq)) for seq in by_slot.values()), default=0)
        attention_pool = _attention_items(study, real, rng, size=max(5, most_checks))
        rows = []
        for slot, seq in sorted(by_slot.items()):
            seq = list(seq)
            n_repeat = round(study.repeat_rate * len(seq))
            for item, order in rng.sample(seq[: max(len(seq) // 2, 1)], min(n_repeat, max(len(seq) // 2, 1))):
                repeat = _repeat_item(item)
                new_order = tuple(reversed(order))  # same item, different panel order, later in the sequence
                seq.insert(rng.randint(min(len(seq), seq.index((item, order)) + 3), len(seq)), (repeat, new_order))
            n_checks = min(round(study.attention_rate * len(seq)), len(attention_pool))
            for att in rng.sample(attention_pool, n_checks):  # without replacement: one of each per rater
                seq.insert(rng.randint(1, len(seq)), (att, tuple(orders[rng.randrange(len(orders))])))
            for position, (item, order) in enumerate(seq):
                cands = sorted(item.candidates.all(), key=lambda c: c.pk)
                panel = [cands[i].pk for i in order if i < len(cands)]
                rows.append(Assignment(study=study, slot=slot, item=item, position=position, panel_order=panel))
        Assignment.objects.bulk_create(rows)
        study.state, study.opened_at = Study.State.OPEN, timezone.now()
        study.save(update_fields=["state", "opened_at"])
        _log(study, "opened", user, {
            "items": len(real), "slots": study.planned_raters, "assignments": len(rows),
            "empty_candidates": len(check.empty), "training_galaxies": check.training_galaxies,
            "training_override_reason": study.training_override_reason,
            "display": study.display, "display_levels": check.levels,
            "blinding_audit": check.blinding.get("verdict", "not audited"),
            "blinding_override_reason": override_reason if check.needs_override else "",
        })
    return study


def _repeat_item(item: Item) -> Item:
    repeat = Item.objects.create(study=item.study, galaxy=item.galaxy, structure=item.structure,
                                 kind=Item.Kind.REPEAT, repeat_of=item)
    Candidate.objects.bulk_create([Candidate(item=repeat, mask=c.mask, producer=c.producer)
                                   for c in sorted(item.candidates.all(), key=lambda c: c.pk)])
    return Item.objects.prefetch_related("candidates").get(pk=repeat.pk)


def _attention_items(study: Study, real: list[Item], rng: random.Random, size: int = 5) -> list[Item]:
    """Up to ``size`` items where one source's panel is replaced by another galaxy's mask: a deliberately
    wrong mask."""
    if study.attention_rate <= 0 or len(real) < 2:
        return []
    out = []
    for item in rng.sample(real, min(len(real), size)):
        donors = [r for r in real if r.galaxy_id != item.galaxy_id and r.structure == item.structure]
        cands = sorted(item.candidates.all(), key=lambda c: c.pk)
        if not donors or not cands:
            continue
        donor = rng.choice(donors)
        donor_cands = [c for c in donor.candidates.all() if c.mask.state == Mask.State.MARKED]
        if not donor_cands:
            continue
        att = Item.objects.create(study=study, galaxy=item.galaxy, structure=item.structure,
                                  kind=Item.Kind.ATTENTION)
        wrong = rng.randrange(len(cands))
        for i, c in enumerate(cands):
            if i == wrong:
                d = rng.choice(donor_cands)
                Candidate.objects.create(item=att, mask=d.mask, producer=c.producer, is_decoy=True,
                                         decoy_of=donor.galaxy)
            else:
                Candidate.objects.create(item=att, mask=c.mask, producer=c.producer)
        out.append(Item.objects.prefetch_related("candidates").get(pk=att.pk))
    return out


def study_render_panels(*, study: Study) -> int:
    """Render and store every panel picture of a study, so raters are served stored bytes from the first
    request on. Returns how many pictures are stored; logs the run."""
    from ratings.services import panels

    n = panels.render_study(study)
    _log(study, "panels rendered", None, {"pictures": n})
    return n


def study_log(*, study: Study, action: str, detail: dict | None = None) -> None:
    """Record an event of the study's life in its log (what the jobs report about it, for instance)."""
    _log(study, action, None, detail)


def study_close(*, study: Study, user=None) -> Study:
    if study.state != Study.State.OPEN:
        raise StudyError("only an open study can be closed")
    study.state, study.closed_at = Study.State.CLOSED, timezone.now()
    study.save(update_fields=["state", "closed_at"])
    _log(study, "closed", user)
    return study


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
