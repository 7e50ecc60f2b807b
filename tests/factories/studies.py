"""Rating studies for tests, written through the real services (galaxy, image and mask stores, study
design, opening, joining, answering).

- ``spiral_study``: an (open) study comparing three sources on small synthetic two-armed spirals, so
  screenshots look like galaxies;
- ``dashboard_study`` + ``answer_study``: a draft study with tiny masks, answered by several raters with a
  clear outcome (model > volunteers > arc finder), one rater failing the attention checks.
"""
from __future__ import annotations

import random

import numpy as np
from django.utils import timezone

from ratings.models import Assignment, BlindingGuess, Candidate, Rater, Study
from ratings.services.answers import PanelAnswer, answer_submit
from ratings.services.raters import rater_consent, rater_join, rater_profile
from ratings.services.studies import study_open, study_set_items
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from tests.factories import UserFactory

SOURCES = (("volunteers", "GZ3D volunteers", "v4"), ("model", "unet-resnet18", "v3"),
           ("sparcfire", "sparcfire-py", "p1"))
PICTURE_SIZE = 48  # px: tiny, the panels are rendered at ratings.services.panels.PANEL_PICTURE_SIZE anyway
DENOMINATOR = 5


def spiral(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rgb uint8 image, arm strength in [0, 1]) of a two-armed logarithmic spiral with a bulge."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(x, y) + 1e-6
    theta = np.arctan2(y, x) + rng.uniform(0, np.pi)
    arms = np.clip(np.cos(2 * (theta - 2.2 * np.log(r))), 0, 1) ** 3 * np.exp(-r / (size * 0.3))
    arms[r < size * 0.08] = 0
    bulge = np.exp(-(r / (size * 0.07)) ** 2)
    light = 0.9 * bulge + 0.8 * arms + rng.normal(0, 0.02, r.shape)
    rgb = np.dstack([light * 1.1, light, light * (0.9 + 0.6 * arms)])
    rgb = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return rgb, arms / max(arms.max(), 1e-6)


def source_counts(arms: np.ndarray, j: int) -> np.ndarray:
    """Vote counts out of DENOMINATOR: each source marks the arms a little differently."""
    threshold = (0.25, 0.15, 0.45)[j]
    counts = np.where(arms > threshold, np.clip(np.round(arms * DENOMINATOR + j - 1), 1, DENOMINATOR), 0)
    if j == 2:  # the arc finder finds only part of each arm
        counts[: arms.shape[0] // 3] = 0
    return counts.astype(np.int64)


def spiral_study(name: str = "Blind study", n_galaxies: int = 4, planned_raters: int = 3,
                raters_per_item: int = 2, practice_items: int = 1, seed: int = 1, open_it: bool = True,
                prefix: str = "rg", reference: bool = True, **fields) -> Study:
    """An (open) study comparing the three sources on ``n_galaxies`` spiral items, with ``practice_items``
    more galaxies outside the study for its practice; with ``reference`` a synthetic galaxy with a true
    mask, outside the study, for the guide's quality examples."""
    producers = [producer_get_or_create(kind=k, name=n, version=v) for k, n, v in SOURCES]
    galaxies = []
    for i in range(n_galaxies):
        g, _ = galaxy_upsert(name=f"{prefix}{i}", defaults={"ra": 30.0 + i, "dec": 1.0 + i / 10})
        rgb, arms = spiral(PICTURE_SIZE, seed * 100 + i)
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        for j, p in enumerate(producers):
            mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                       numerators=source_counts(arms, j), denominator=DENOMINATOR)
        galaxies.append(g)
    for i in range(practice_items):  # practice comes from galaxies that are not items of the study
        g, _ = galaxy_upsert(name=f"practice-{prefix}{i}", defaults={"ra": 60.0 + i, "dec": 3.0})
        rgb, arms = spiral(PICTURE_SIZE, seed * 100 + 50 + i)
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        for j, p in enumerate(producers):
            mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                       numerators=source_counts(arms, j), denominator=DENOMINATOR)
    if reference:  # a synthetic galaxy outside the study whose true mask makes the guide's examples
        g, _ = galaxy_upsert(name=f"{prefix}-ref", defaults={"ra": 50.0, "dec": -1.0, "synthetic": True})
        rgb, arms = spiral(PICTURE_SIZE, seed * 100 + 99)
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        truth = producer_get_or_create(kind="truth", name="synthetic truth", version="1")
        mask_store(galaxy=g, image=im, structure="spiral", producer=truth, state="marked",
                   numerators=(arms > 0.2).astype(np.int64), denominator=1)
    values = dict(structures=["spiral"], primary_question="Which source marks spiral arms best?",
                  planned_items=n_galaxies, planned_raters=planned_raters, raters_per_item=raters_per_item,
                  stopping_rule="every planned rating done", seed=seed, repeat_rate=0, attention_rate=0,
                  practice_items=practice_items)
    values.update(fields)
    study = Study.objects.create(name=name, **values)
    study.sources.set(producers)
    study_set_items(study=study, galaxies=galaxies)
    if open_it:
        study_open(study=study)
    return study


KINDS = ("volunteers", "model", "sparcfire")
# the mean quality each source gets, so that the outcome is clear (model > volunteers > sparcfire)
MEAN_QUALITY = {"model": 2.5, "volunteers": 1.6, "sparcfire": 0.6}
FAILING_RATER_SLOT = 5  # this rater rates the attention checks' wrong mask as good
FORMULA_COMMENT = '=HYPERLINK("http://evil.example","click")'


def make_user(name: str, *, staff: bool = False, superuser: bool = False):
    """A user whose password is "pw-" + their name."""
    return UserFactory(username=name, password="pw-" + name, is_staff=staff or superuser, is_superuser=superuser)


def dashboard_study(name: str = "pilot", n_galaxies: int = 8) -> Study:
    """A draft study of n_galaxies galaxies x spiral, three sources, six planned raters."""
    producers = [producer_get_or_create(kind=k, name=k, version="1") for k in KINDS]
    galaxies = []
    for i in range(n_galaxies):
        g, _ = galaxy_upsert(name=f"{name}-g{i}", defaults={"ra": 10.0 + i, "dec": -1.5 + i / 4})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=np.zeros((8, 8, 3), np.uint8))
        for j, p in enumerate(producers):
            counts = np.zeros((8, 8), np.int64)
            counts[j:j + 3, i % 5:(i % 5) + 3] = 1
            mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                       numerators=counts, denominator=1)
        galaxies.append(g)
    study = Study.objects.create(name=name, structures=["spiral"], primary_question="Which source is best?",
                                 planned_items=n_galaxies, planned_raters=6, raters_per_item=3,
                                 stopping_rule="all items done", seed=3, repeat_rate=0.25, attention_rate=0.2)
    study.sources.set(producers)
    study_set_items(study=study, galaxies=galaxies)
    return study


def answer_assignment(assignment: Assignment, rng: random.Random, *, fail_attention: bool = False,
                      comment: str = "", flagged: bool = False) -> None:
    cands = {c.pk: c for c in Candidate.objects.filter(pk__in=assignment.panel_order).select_related("producer")}
    qualities = []
    for cid in assignment.panel_order:
        c = cands[cid]
        if c.is_decoy:
            q = 3 if fail_attention else 0
        else:
            q = int(np.clip(round(MEAN_QUALITY[c.producer.kind] + rng.uniform(-0.9, 0.9)), 0, 3))
        qualities.append(q)
    # rank by quality; equal qualities share a rank (a tie)
    answers = [PanelAnswer(i, 1 + sum(o > q for o in qualities), q) for i, q in enumerate(qualities)]
    answer_submit(assignment=assignment, answers=answers, seconds=rng.uniform(5, 60), comment=comment,
                  flagged_bad_image=flagged)


def answer_study(study: Study, *, n_raters: int = 6, fraction: float = 1.0, seed: int = 1) -> list[Rater]:
    """Open the study (if a draft), let n_raters join and answer the first ``fraction`` of their items,
    and make blinding guesses. Rater slot 5 answers all items and fails the attention checks; slot 0 leaves
    a formula comment and flags one image."""
    if study.state == Study.State.DRAFT:
        study_open(study=study)
    rng = random.Random(seed)
    raters = []
    for i in range(n_raters):
        rater = rater_join(study=study, user=make_user(f"{study.name}-rater{i}"))
        rater_profile(rater=rater, career_stage="postdoc", experience="some", helped_build=i == 0)
        raters.append(rater)
        todo = list(Assignment.objects.filter(rater=rater).order_by("position"))
        n_done = len(todo) if rater.slot == FAILING_RATER_SLOT else round(fraction * len(todo))
        for k, a in enumerate(todo[:n_done]):
            answer_assignment(a, rng, fail_attention=rater.slot == FAILING_RATER_SLOT,
                              comment=FORMULA_COMMENT if (rater.slot == 0 and k == 0) else "",
                              flagged=rater.slot == 0 and k == 1)
        # blinding guesses on two of the rater's panels: one right, one "don't know"
        first = Assignment.objects.filter(rater=rater, item__kind="real").order_by("position").first()
        cands = Candidate.objects.filter(pk__in=first.panel_order).select_related("producer").order_by("pk")
        BlindingGuess.objects.create(rater=rater, candidate=cands[0], guessed_kind=cands[0].producer.kind,
                                     answered_at=timezone.now())
        BlindingGuess.objects.create(rater=rater, candidate=cands[1], guessed_kind="unknown",
                                     answered_at=timezone.now())
    return raters


def ready_rater(study, user) -> Rater:
    rater = rater_join(study=study, user=user)
    rater_consent(rater=rater)
    rater_profile(rater=rater, career_stage="student", experience="none", helped_build=False)
    Rater.objects.filter(pk=rater.pk).update(practice_done_at="2026-01-01T00:00:00Z")
    rater.refresh_from_db()
    return rater
