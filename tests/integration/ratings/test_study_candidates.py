"""Only asked sources are candidates: a (galaxy, structure, source) whose mask is "not asked" (the arc finder
makes no bar masks) is never shown, the design says what it dropped, and no statistic counts it."""
from __future__ import annotations

import random

import numpy as np
import pytest

from ratings.models import Assignment, Candidate, Study
from ratings.services import exports, results
from ratings.services.raters import rater_join
from ratings.services.studies import StudyError, study_check, study_open, study_set_items
from segmentation.models import Mask
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from tests.factories.studies import answer_assignment, make_user

KINDS = ("volunteers", "model", "sparcfire")


def two_structure_galaxies(n: int, prefix: str = "ng"):
    """n galaxies with spiral masks of all three sources and bar masks of volunteers and model only; the arc
    finder's bar is "not asked". The last galaxy's volunteers were not asked about the bar either."""
    producers = {k: producer_get_or_create(kind=k, name=k, version="1") for k in KINDS}
    galaxies = []
    for i in range(n):
        g, _ = galaxy_upsert(name=f"{prefix}{i}", defaults={"ra": 20.0 + i, "dec": 2.0})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=np.zeros((8, 8, 3), np.uint8))
        for j, (kind, p) in enumerate(producers.items()):
            counts = np.zeros((8, 8), np.int64)
            counts[j:j + 3, 2:6] = 1
            mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                           numerators=counts, denominator=1)
            if kind == "sparcfire" or (kind == "volunteers" and i == n - 1):
                mask_store(galaxy=g, image=im, structure="bar", producer=p, state="not_asked")
            else:
                mask_store(galaxy=g, image=im, structure="bar", producer=p, state="marked",
                               numerators=counts.T.copy(), denominator=1)
        galaxies.append(g)
    return list(producers.values()), galaxies


def draft(name: str, producers, structures=("spiral", "bar")) -> Study:
    study = Study.objects.create(name=name, structures=list(structures), primary_question="q", planned_items=8,
                                 planned_raters=3, raters_per_item=2, stopping_rule="done", seed=2,
                                 repeat_rate=0, attention_rate=0, practice_items=0)
    study.sources.set(producers)
    return study


def test_not_asked_masks_are_dropped_with_a_message_and_absent_from_every_statistic(db):
    producers, galaxies = two_structure_galaxies(5)
    study = draft("two structures", producers)
    made = study_set_items(study=study, galaxies=galaxies)
    assert made == 5 + 4  # 5 spiral items; 4 bar items (the last galaxy's bar has only the model)
    assert "Dropped 6 candidate(s)" in made.message
    assert "sparcfire bar: 5 (ng0, ng1, ng2, ng3, ng4)" in made.message
    assert "volunteers bar: 1 (ng4)" in made.message and "not asked" in made.message
    assert "Dropped 1 item(s) - bar: 1 (ng4)" in made.message
    assert not Candidate.objects.filter(item__study=study, mask__state=Mask.State.NOT_ASKED).exists()
    assert study.log.filter(action="items chosen").get().detail["dropped_candidates"] == 6
    check = study_check(study=study)
    assert not check.blocking and not check.missing and not check.not_asked
    assert len(check.dropped) == 4 and "sparcfire bar: 4 (ng0, ng1, ng2, ng3)" in check.dropped_message

    study_open(study=study)
    rng = random.Random(3)
    for i in range(3):
        rater = rater_join(study=study, user=make_user(f"cand-rater{i}"))
        for a in Assignment.objects.filter(rater=rater):
            assert len(a.panel_order) == (3 if a.item.structure == "spiral" else 2)
            answer_assignment(a, rng)
    Study.objects.filter(pk=study.pk).update(state=Study.State.CLOSED)
    study.refresh_from_db()
    tables = results.study_results(study, n_boot=20, with_plots=False).tables
    for name, frame in tables.items():
        if {"structure", "source"} <= set(frame.columns):
            bar = frame[frame["structure"].astype(str) == "bar"]
            assert "sparcfire" not in set(bar["source"].astype(str)), name
    assert set(tables["quality_summary"].query("structure == 'bar'")["source"]) == {"model", "volunteers"}
    summary = "".join(results.export_lines(study, "summary"))
    assert not [line for line in summary.splitlines() if ",bar," in line and "sparcfire" in line]
    raw = list(exports.answer_rows(study))
    assert {r["mask_state"] for r in raw} == {"marked"}


def test_a_study_with_not_asked_candidates_names_them_and_cannot_open(db):
    producers, galaxies = two_structure_galaxies(3, prefix="old")
    study = draft("made before the rule", producers)
    study_set_items(study=study, galaxies=galaxies)
    # a study whose items were made before not-asked masks were dropped holds such candidates
    for item in study.items.filter(structure="bar"):
        sparcfire = producers[2]
        mask = Mask.objects.get(galaxy=item.galaxy, structure="bar", producer=sparcfire, is_current=True)
        Candidate.objects.create(item=item, mask=mask, producer=sparcfire)
    check = study_check(study=study)
    assert len(check.not_asked) == 2
    blocking = " ".join(check.blocking)
    assert "2 candidates whose source was not asked" in blocking and "sparcfire bar: old0, old1" in blocking
    with pytest.raises(StudyError, match="not asked"):
        study_open(study=study)
    assert Study.objects.get(pk=study.pk).state == Study.State.DRAFT


def test_a_structure_no_two_asked_sources_cover_is_refused(db):
    producers, galaxies = two_structure_galaxies(3, prefix="few")
    study = draft("bars of the arc finder", [producers[0], producers[2]], structures=("spiral", "bar"))
    with pytest.raises(StudyError, match="too few candidates remain: no bar item"):
        study_set_items(study=study, galaxies=galaxies)
    assert not study.items.exists()


def test_the_admin_names_what_was_dropped_and_what_blocks(client, db):
    producers, galaxies = two_structure_galaxies(3, prefix="adm")
    study = draft("admin check", producers)
    study_set_items(study=study, galaxies=galaxies)
    make_user("boss", superuser=True)
    client.login(username="boss", password="pw-boss")
    page = client.get(f"/admin/ratings/study/{study.pk}/change/").content.decode()
    assert "Not candidates, because their source was not asked" in page
    assert "sparcfire bar: 2 (adm0, adm1)" in page
    item = study.items.filter(structure="bar").first()
    Candidate.objects.create(item=item, producer=producers[2], mask=Mask.objects.get(
        galaxy=item.galaxy, structure="bar", producer=producers[2], is_current=True))
    page = client.get(f"/admin/ratings/study/{study.pk}/change/").content.decode()
    assert "1 candidates whose source was not asked for that structure" in page and "sparcfire bar: adm0" in page
