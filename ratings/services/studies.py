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
from django.utils import timezone

from evalcore import vocabulary
from evalcore.study import design
from ratings.models import (
    Assignment,
    Candidate,
    Item,
    PanelImage,
    Study,
    StudyLog,
)
from ratings.selectors.studies import candidate_mask
from ratings.services.practice import practice_create, practice_galaxies
from segmentation.models import Mask


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


class ItemsSet(int):
    """What ``study_set_items`` made: the number of items (an int) with ``plan`` (the candidates and what was
    dropped, ``evalcore.study.design.CandidatePlan``) and ``message`` (what was dropped and why, or "")."""

    plan: design.CandidatePlan
    message: str


DISPLAY_FIELDS = ("display", "threshold", "display_overrides", "consensus_level")


def _source_names(producers) -> dict[int, str]:
    return vocabulary.source_labels((p.pk, p.kind, p.name, p.version) for p in producers)


def study_set_items(*, study: Study, galaxies, user=None) -> ItemsSet:
    """(Re)build the study's real items: one per (galaxy, structure), with one candidate per source that was
    asked for that structure. A source whose mask is "not asked" is never a candidate; a (galaxy, structure)
    left with fewer than two asked sources is not an item. Both are counted and named in the returned
    message and the study's log. Refused (nothing changes) when a structure would have no item at all."""
    if study.state != Study.State.DRAFT:
        raise StudyError("items can only change while the study is a draft")
    sources = list(study.sources.all())
    names = _source_names(sources)
    galaxies = list(galaxies)
    masks = {(g.pk, structure, p.pk): candidate_mask(g, structure, p)
             for g in galaxies for structure in study.structures for p in sources}
    states = {(str(g), structure, str(p)): (m.state if m is not None else None)
              for (g, structure, p), m in masks.items()}
    plan = design.plan_candidates(states, [str(g.pk) for g in galaxies], list(study.structures),
                                  [str(p.pk) for p in sources], min_sources=min(2, len(sources)))
    by_pk = {str(g.pk): g.name for g in galaxies}
    plan.dropped = [design.Dropped(by_pk[d.galaxy], d.structure, names.get(int(d.source), d.source) if d.source
                                   else "", d.reason) for d in plan.dropped]
    empty_structures = [s for s in study.structures if not any(k[1] == s for k in plan.items)]
    if galaxies and empty_structures:
        raise StudyError(
            f"too few candidates remain: no {', '.join(empty_structures)} item has two asked sources among "
            f"these galaxies ({plan.message()}); remove the structure from the study or choose other galaxies")
    by_id = {p.pk: p for p in sources}
    with transaction.atomic():
        study.items.all().delete()
        n = 0
        for galaxy in galaxies:
            for structure in study.structures:
                keep = plan.items.get((str(galaxy.pk), structure))
                if keep is None:
                    continue
                item = Item.objects.create(study=study, galaxy=galaxy, structure=structure)
                for source in keep:
                    mask = masks[(galaxy.pk, structure, int(source))]
                    if mask is not None:
                        Candidate.objects.create(item=item, mask=mask, producer=by_id[int(source)])
                n += 1
        _log(study, "items chosen", user, {"items": n, "galaxies": len(galaxies),
                                           "dropped_candidates": len(plan.dropped_candidates),
                                           "dropped_items": len(plan.dropped_items), "message": plan.message()})
    out = ItemsSet(n)
    out.plan, out.message = plan, plan.message()
    return out


@dataclass
class StudyCheck:
    missing: list[dict] = field(default_factory=list)  # (galaxy, structure, source) without a mask
    empty: list[dict] = field(default_factory=list)  # candidates whose mask has nothing marked
    not_asked: list[dict] = field(default_factory=list)  # candidates whose source was not asked: blocking
    dropped: list[dict] = field(default_factory=list)  # sources left out of an item because not asked
    training_galaxies: list[str] = field(default_factory=list)
    practice_available: int = 0  # galaxies outside the study that practice items can come from
    problems: list[str] = field(default_factory=list)
    plan: dict = field(default_factory=dict)  # planned against actual items (ratings.selectors.items_plan)
    blinding: dict = field(default_factory=dict)  # the machine blinding audit (ratings/services/blinding_audit.py)
    levels: dict = field(default_factory=dict)  # each source's marking level per structure

    @property
    def needs_override(self) -> list[str]:
        """What opening needs a logged reason for: a presentation audit above chance."""
        from ratings.services import blinding_audit

        if blinding_audit.leaks(self.blinding):
            return [f"the blinding audit names the source above chance ({self.blinding.get('verdict')}); "
                    "opening needs an override with a reason, which is logged"]
        return []

    @property
    def blocking(self) -> list[str]:
        out = list(self.problems)
        if self.missing:
            out.append(f"{len(self.missing)} candidate masks are missing: {_where(self.missing)}")
        if self.not_asked:
            out.append(f"{len(self.not_asked)} candidates whose source was not asked for that structure, which "
                       f"would be rated as if their mask existed: {_where(self.not_asked)}; choose the "
                       "galaxies again (Choose galaxies) to drop them")
        return out

    @property
    def dropped_message(self) -> str:
        """The sources left out of items because they were not asked, per source and structure."""
        return design.dropped_message([design.Dropped(d["galaxy"], d["structure"], d["source"],
                                                      design.NOT_ASKED_REASON) for d in self.dropped])


def _where(rows: list[dict], limit: int = 12) -> str:
    """``sparcfire bar: g1, g2 (+3 more); ...``: (galaxy, structure, source) rows grouped by source and structure."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        groups.setdefault((r["source"], r["structure"]), []).append(r["galaxy"])
    return "; ".join(f"{source} {structure}: {', '.join(g[:limit])}"
                     + (f" (+{len(g) - limit} more)" if len(g) > limit else "")
                     for (source, structure), g in sorted(groups.items()))


def study_check(*, study: Study, with_audit: bool = True) -> StudyCheck:
    """What must be known before opening: missing and empty candidates, training galaxies, design gaps, each
    source's marking level and the machine blinding audit of the panels (reused until the design changes)."""
    from ratings.selectors.studies import items_plan
    from ratings.services import blinding_audit, panels

    check = StudyCheck()
    check.levels = panels.compute_source_levels(study) if study.state == Study.State.DRAFT else \
        panels.source_levels(study)
    sources = list(study.sources.all())
    check.problems += study_design_problems(structures=study.structures, sources=sources,
                                            calibration=study.calibration)
    for field_name in ("primary_question", "stopping_rule", "planned_items", "planned_raters"):
        if not getattr(study, field_name):
            check.problems.append(f"pre-registration incomplete: {field_name} is not set")
    items = study.items.filter(kind=Item.Kind.REAL).select_related("galaxy").prefetch_related(
        "candidates__mask", "candidates__producer")
    if not items:
        check.problems.append("the study has no items")
    names = _source_names(sources)
    not_asked = set(Mask.objects.filter(
        galaxy_id__in={i.galaxy_id for i in items}, producer__in=sources, is_current=True,
        state=Mask.State.NOT_ASKED).values_list("galaxy_id", "structure", "producer_id"))
    for item in items:
        have = {c.producer_id: c for c in item.candidates.all()}
        grids = {c.mask.image_id for c in have.values()}
        if len(grids) > 1:
            check.problems.append(f"{item.galaxy.name} {item.structure}: candidates lie on different images, "
                                  "so their panels would differ in more than the mask")
        for producer in sources:
            where = {"galaxy": item.galaxy.name, "structure": item.structure, "source": names[producer.pk]}
            cand = have.get(producer.pk)
            if cand is None and (item.galaxy_id, item.structure, producer.pk) in not_asked:
                check.dropped.append(where)
            elif cand is None:
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
    if study.practice_items:
        check.practice_available = len({g.pk for g, _, _ in practice_galaxies(study=study)})
    check.plan = items_plan(study)
    if check.plan["shortfall"] and not check.plan["acknowledged"]:
        check.problems.append(
            f"{check.plan['actual']} items where {check.plan['planned']} are planned (a shortfall of "
            f"{check.plan['shortfall']}): choose more galaxies, or accept the shortfall")
    if study.planned_raters and study.raters_per_item > study.planned_raters:
        check.problems.append("raters per item exceeds the planned number of raters")
    if with_audit and items:
        check.blinding = blinding_audit.study_audit(study)
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
        practice = practice_create(study=study)
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
            "practice_items": [f"{i.galaxy.name} {i.structure}" for i in practice],
            "practice_with_truth": sum(1 for i in practice if i.has_truth),
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


# --- setting a study up (the admin page and the study commands call these) -----------------------------
def study_design_problems(*, structures, sources, calibration: bool, display: str | None = None) -> list[str]:
    """What is wrong with a study's structures, sources and display, in words (empty when nothing is)."""
    problems = []
    unknown = [s for s in structures if s not in vocabulary.STRUCTURES]
    if not structures:
        problems.append(f"choose at least one structure ({', '.join(vocabulary.STRUCTURES)})")
    elif unknown:
        problems.append(f"unknown structures {', '.join(map(repr, unknown))}: "
                        f"one of {', '.join(vocabulary.STRUCTURES)}")
    if not 2 <= len(sources) <= 3:
        problems.append(f"a study compares 2 or 3 sources, this one has {len(sources)}")
    truth = [p for p in sources if p.kind == vocabulary.TRUTH]
    if truth and not calibration:
        problems.append("the ground truth is a rated source only in a calibration study (set calibration)")
    if display is not None and display not in Study.Display.values:
        problems.append(f"unknown display {display!r}: one of {', '.join(Study.Display.values)}")
    return problems


def study_create(*, name: str, structures, sources, user=None, calibration: bool = False, **settings) -> Study:
    """A new draft study comparing ``sources`` (Producers) on ``structures``; ``settings`` are other Study
    fields (question, display, raters per item, planned numbers...). Raises StudyError with every problem."""
    name = (name or "").strip()
    problems = [] if name else ["give the study a name"]
    if name and Study.objects.filter(name=name).exists():
        problems.append(f"a study called {name!r} exists already")
    structures = list(dict.fromkeys(structures))
    sources = list(dict.fromkeys(sources))
    problems += study_design_problems(structures=structures, sources=sources, calibration=calibration,
                                      display=settings.get("display"))
    unknown = [f for f in settings if f not in {fl.name for fl in Study._meta.get_fields()}]
    if unknown:
        problems.append(f"unknown study settings: {', '.join(unknown)}")
    if problems:
        raise StudyError("; ".join(problems))
    with transaction.atomic():
        study = Study.objects.create(name=name, structures=structures, calibration=calibration,
                                     created_by=user if getattr(user, "pk", None) else None, **settings)
        study.sources.set(sources)
        _log(study, "created", user, {"structures": structures, "sources": [str(p) for p in sources]})
    return study


def study_choose_galaxies(*, study: Study, galaxies, selection: dict, user=None) -> int:
    """Make ``galaxies`` the study's items and record how they were chosen (``selection``). A shortfall
    accepted earlier must be accepted again for the new items. Returns the number of items."""
    with transaction.atomic():
        n = study_set_items(study=study, galaxies=galaxies, user=user)
        study.selection, study.shortfall_acknowledged = selection, None
        study.save(update_fields=["selection", "shortfall_acknowledged"])
    return n


def study_acknowledge_shortfall(*, study: Study, user=None) -> Study:
    """Accept the study's current number of items in place of the planned number (logged)."""
    from ratings.selectors.studies import items_plan

    if study.state != Study.State.DRAFT:
        raise StudyError("only a draft study's items can be accepted")
    plan = items_plan(study)
    if not plan["shortfall"]:
        raise StudyError("there is no shortfall to accept: the study has the planned number of items")
    study.shortfall_acknowledged = plan["actual"]
    study.save(update_fields=["shortfall_acknowledged"])
    _log(study, "shortfall accepted", user, {"planned_items": plan["planned"], "items": plan["actual"]})
    return study
