import numpy as np
import pytest

from ratings.models import Answer, AnswerRevision, Assignment, Item, Study
from ratings.services.answers import PanelAnswer, answer_submit
from ratings.services.raters import rater_join
from ratings.services.studies import StudyError, study_open, study_set_items, study_update
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from tests.factories.studies import dashboard_study, make_user


@pytest.fixture
def study(db):
    return dashboard_study(name="s")


def test_opening_generates_the_whole_balanced_assignment(study):
    study_open(study=study)
    real = Assignment.objects.filter(study=study, item__kind=Item.Kind.REAL)
    assert real.count() == 8 * 3
    assert set(real.values_list("slot", flat=True)) == set(range(6))
    kinds = set(Assignment.objects.filter(study=study).values_list("item__kind", flat=True))
    assert {"repeat", "attention"} <= kinds
    first_source_positions = {}
    for a in real.select_related("item"):
        cands = {c.pk: c.producer.kind for c in a.item.candidates.all()}
        for pos, cid in enumerate(a.panel_order):
            first_source_positions.setdefault(cands[cid], []).append(pos)
    for kind, positions in first_source_positions.items():
        counts = np.bincount(positions, minlength=3)
        assert counts.min() >= 6, (kind, counts)  # 24 appearances over 3 positions: 8 each when balanced


def test_frozen_preregistration(study):
    study_open(study=study)
    with pytest.raises(StudyError, match="frozen"):
        study_update(study=study, raters_per_item=2)
    study_update(study=study, reason="typo in the question", primary_question="Which is best?")
    assert study.log.filter(action="changed after opening", reason="typo in the question").exists()


def test_incomplete_preregistration_and_missing_candidates_block_opening(study):
    study.stopping_rule = ""
    study.save()
    item = study.items.first()
    item.candidates.first().delete()
    with pytest.raises(StudyError, match="stopping_rule.*candidate masks are missing"):
        study_open(study=study)


def test_raters_claim_slots_and_answers_are_idempotent_with_history(study):
    study_open(study=study)
    alice = rater_join(study=study, user=make_user("alice"))
    bob = rater_join(study=study, user=make_user("bob", staff=True))
    assert rater_join(study=study, user=alice.user) == alice
    assert alice.slot != bob.slot and bob.is_staff
    a = Assignment.objects.filter(rater=alice).order_by("position").first()
    answers = [PanelAnswer(0, 1, 3), PanelAnswer(1, 2, 2), PanelAnswer(2, 2, 1)]
    answer_submit(assignment=a, answers=answers, seconds=5)
    answer_submit(assignment=a, answers=answers, seconds=1)  # a retried request
    assert Answer.objects.filter(assignment=a).count() == 3
    assert Answer.objects.get(assignment=a, panel_position=1).tied
    answer_submit(assignment=a, answers=[PanelAnswer(0, 2, 1), PanelAnswer(1, 1, 3),
                                         PanelAnswer(2, 3, 0)])
    changed = Answer.objects.get(assignment=a, panel_position=0)
    assert (changed.rank, changed.quality, changed.edits) == (2, 1, 1)
    assert AnswerRevision.objects.filter(answer=changed, rank=1, quality=3).exists()


@pytest.mark.parametrize(
    "answers, message",
    [
        ([(0, 1, 3), (1, 2, 2)], "Every one of the 3 masks"),
        ([(0, 1, 4), (1, 2, 2), (2, 3, 1)], "quality must be"),
        ([(0, 2, 3), (1, 2, 2), (2, 3, 1)], "ranked best"),
        ([(0, 1, 3), (1, 2, 2), (2, 9, 1)], "rank must be"),
    ],
)
def test_bad_answers_are_refused_and_nothing_is_stored(study, answers, message):
    study_open(study=study)
    rater = rater_join(study=study, user=make_user("carol"))
    a = Assignment.objects.filter(rater=rater).first()
    with pytest.raises(StudyError, match=message):
        answer_submit(assignment=a, answers=[PanelAnswer(*x) for x in answers])
    assert not Answer.objects.filter(assignment=a).exists()


def test_no_more_raters_than_planned(study):
    study_open(study=study)
    for i in range(6):
        rater_join(study=study, user=make_user(f"u{i}"))
    with pytest.raises(StudyError, match="taken"):
        rater_join(study=study, user=make_user("late"))


def test_a_long_sequence_gets_distinct_attention_checks(db):
    producers = [producer_get_or_create(kind=k, name=k, version="1") for k in ("volunteers", "model")]
    galaxies = []
    for i in range(80):
        g, _ = galaxy_upsert(name=f"long{i}", defaults={"ra": 100.0 + i * 0.1, "dec": 3.0})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=np.zeros((8, 8, 3), np.uint8))
        for p in producers:
            mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                       numerators=np.eye(8, dtype=np.int64), denominator=1)
        galaxies.append(g)
    s = Study.objects.create(name="long", structures=["spiral"], primary_question="q", planned_items=80,
                             planned_raters=1, raters_per_item=1, stopping_rule="done", attention_rate=0.1)
    s.sources.set(producers)
    study_set_items(study=s, galaxies=galaxies)
    study_open(study=s)
    checks = Assignment.objects.filter(study=s, item__kind="attention")
    assert checks.count() == 8
    assert checks.values("item").distinct().count() == 8
