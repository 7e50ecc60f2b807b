"""A small rating study built through ratings.services and answered by several raters (shared by the
dashboard and export tests), and a check that the study it builds is what those tests rely on."""
from __future__ import annotations

import random

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from evalcore.study.stats import validate_answers
from ratings import export, services
from ratings.models import Assignment, BlindingGuess, Candidate, Rater, Study
from segmentation import services as seg

KINDS = ("volunteers", "model", "sparcfire")
# the mean quality each source gets, so that the outcome is clear (model > volunteers > sparcfire)
MEAN_QUALITY = {"model": 2.5, "volunteers": 1.6, "sparcfire": 0.6}
FAILING_RATER_SLOT = 5  # this rater rates the attention checks' wrong mask as good
FORMULA_COMMENT = '=HYPERLINK("http://evil.example","click")'


def make_user(name: str, *, staff: bool = False, superuser: bool = False):
    return get_user_model().objects.create_user(name, password="pw-" + name, is_staff=staff or superuser,
                                                is_superuser=superuser)


def build_study(name: str = "pilot", n_galaxies: int = 8) -> Study:
    """A draft study of n_galaxies galaxies x spiral, three sources, six planned raters."""
    producers = [seg.producer_get_or_create(kind=k, name=k, version="1") for k in KINDS]
    galaxies = []
    for i in range(n_galaxies):
        g, _ = seg.galaxy_upsert(name=f"{name}-g{i}", defaults={"ra": 10.0 + i, "dec": -1.5 + i / 4})
        im, _ = seg.image_store(galaxy=g, kind="survey_cutout", rgb=np.zeros((8, 8, 3), np.uint8))
        for j, p in enumerate(producers):
            counts = np.zeros((8, 8), np.int64)
            counts[j:j + 3, i % 5:(i % 5) + 3] = 1
            seg.mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                           numerators=counts, denominator=1)
        galaxies.append(g)
    study = Study.objects.create(name=name, structures=["spiral"], primary_question="Which source is best?",
                                 planned_items=n_galaxies, planned_raters=6, raters_per_item=3,
                                 stopping_rule="all items done", seed=3, repeat_rate=0.25, attention_rate=0.2)
    study.sources.set(producers)
    services.study_set_items(study=study, galaxies=galaxies)
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
    answers = [services.PanelAnswer(i, 1 + sum(o > q for o in qualities), q) for i, q in enumerate(qualities)]
    services.answer_submit(assignment=assignment, answers=answers, seconds=rng.uniform(5, 60), comment=comment,
                           flagged_bad_image=flagged)


def answer_study(study: Study, *, n_raters: int = 6, fraction: float = 1.0, seed: int = 1) -> list[Rater]:
    """Open the study (if a draft), let n_raters join and answer the first ``fraction`` of their items,
    and make blinding guesses. Rater slot 5 answers all items and fails the attention checks; slot 0 leaves
    a formula comment and flags one image."""
    if study.state == Study.State.DRAFT:
        services.study_open(study=study)
    rng = random.Random(seed)
    raters = []
    for i in range(n_raters):
        rater = services.rater_join(study=study, user=make_user(f"{study.name}-rater{i}"))
        services.rater_profile(rater=rater, career_stage="postdoc", experience="some", helped_build=i == 0)
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


def test_the_built_study_has_every_kind_of_row_the_statistics_read(db):
    study = build_study()
    answer_study(study)
    answers = validate_answers(export.answers_frame(study))
    assert set(answers["item_kind"]) == {"real", "repeat", "attention"}
    assert answers["rater"].nunique() == 6
    assert answers["tie"].any() and answers["flagged_bad_image"].any()
    attention = answers[answers["item_kind"] == "attention"]
    failing = attention.loc[~attention["attention_passed"].astype(bool), "rater"].unique().tolist()
    assert failing == [f"R{FAILING_RATER_SLOT + 1:03d}"]
    guesses = export.guesses_frame(study)
    assert len(guesses) == 12 and guesses["guessed_source"].isna().sum() == 6
