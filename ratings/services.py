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

import random
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from evalcore.study import design
from ratings.models import (
    Answer,
    AnswerRevision,
    Assignment,
    Candidate,
    Invitation,
    Item,
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
    if study.state != Study.State.DRAFT:
        _log(study, "changed after opening", user, {"before": before, "after": changes}, reason)
    return study


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

    @property
    def blocking(self) -> list[str]:
        out = list(self.problems)
        if self.missing:
            out.append(f"{len(self.missing)} candidate masks are missing")
        return out


def study_check(*, study: Study) -> StudyCheck:
    """What must be known before opening: missing and empty candidates, training galaxies, design gaps."""
    check = StudyCheck()
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
        from segmentation.training import model_version_splits

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
    return check


def study_open(*, study: Study, user=None) -> Study:
    """Freeze the design, add quality-control items and generate every slot's assignment."""
    if study.state != Study.State.DRAFT:
        raise StudyError(f"only a draft study can be opened; this one is {study.state}")
    check = study_check(study=study)
    if check.blocking:
        raise StudyError("; ".join(check.blocking))
    rng = random.Random(study.seed)
    with transaction.atomic():
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


def study_render_panels(study_id: int) -> int:
    """Job (queue ``default``): render and store every panel picture of a study, so raters are served
    stored bytes from the first request on. Returns how many pictures are stored; logs the run."""
    from ratings import panels

    study = Study.objects.get(pk=study_id)
    n = panels.render_study(study)
    _log(study, "panels rendered", None, {"pictures": n})
    return n


def study_render_enqueue(*, study: Study) -> str:
    """Queue ``study_render_panels`` for this study on the ``default`` queue; returns the job id."""
    from evalsite import queues

    def queue_unavailable(exc):  # not fatal: each panel is rendered when it is first shown instead
        _log(study, "panel rendering not queued", None, {"reason": str(exc)})

    job_id = queues.enqueue(queues.DEFAULT, "ratings.services.study_render_panels", study.pk,
                            job_prefix=f"study-{study.pk}-panels", job_timeout=3 * 3600,
                            on_failure=queue_unavailable)
    _log(study, "panel rendering queued", None, {"job": job_id})
    return job_id


def study_close(*, study: Study, user=None) -> Study:
    if study.state != Study.State.OPEN:
        raise StudyError("only an open study can be closed")
    study.state, study.closed_at = Study.State.CLOSED, timezone.now()
    study.save(update_fields=["state", "closed_at"])
    _log(study, "closed", user)
    return study


# --- raters --------------------------------------------------------------------------------------------
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


def answer_submit(*, assignment: Assignment, answers: list[PanelAnswer], seconds: float = 0.0,
                  comment: str = "", flagged_bad_image: bool = False) -> list[Answer]:
    """Store a rater's answers for one item. Idempotent; changing earlier answers keeps revisions."""
    study = assignment.study
    if study.state != Study.State.OPEN:
        raise StudyError("the study is closed; answers can no longer change")
    n = len(assignment.panel_order)
    positions = sorted(a.panel_position for a in answers)
    if positions != list(range(n)):
        raise StudyError(f"every one of the {n} panels needs a rank and a quality")
    for a in answers:
        if a.quality not in Quality.values:
            raise StudyError(f"quality must be one of {Quality.values}, got {a.quality!r}")
        if not 1 <= a.rank <= n:
            raise StudyError(f"rank must be within 1..{n}, got {a.rank!r}")
    if min(a.rank for a in answers) != 1:
        raise StudyError("one panel must be ranked best (rank 1)")
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
            seconds_spent=F("seconds_spent") + max(0.0, float(seconds)), comment=comment[:2000],
            flagged_bad_image=bool(flagged_bad_image),
            submitted_at=Coalesce("submitted_at", Value(timezone.now())))
        locked = Assignment.objects.get(pk=assignment.pk)
        wanted = {locked.panel_order[a.panel_position]: (a, rank_counts[a.rank] > 1) for a in answers}
        existing = {x.candidate_id: x for x in Answer.objects.filter(assignment=locked)}
        new = [Answer(assignment=locked, candidate_id=cid, panel_position=a.panel_position, rank=a.rank, tied=tied,
                      quality=a.quality) for cid, (a, tied) in wanted.items() if cid not in existing]
        if new:
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
                AnswerRevision.objects.create(answer=obj, rank=obj.rank, tied=obj.tied, quality=obj.quality)
                obj.rank, obj.tied, obj.quality, obj.edits = a.rank, tied, a.quality, obj.edits + 1
                obj.save(update_fields=["rank", "tied", "quality", "edits", "updated_at"])
            stored.append(obj)
    return sorted(stored, key=lambda x: x.panel_position)
