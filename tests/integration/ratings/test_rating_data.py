"""The rating tests' study builder (tests.factories.studies.spiral_study) makes what they rely on."""
from __future__ import annotations

from ratings.models import Assignment, Candidate, Item, Study
from tests.factories.studies import spiral_study


def test_builder_makes_an_open_three_source_study(db):
    study = spiral_study(n_galaxies=3, planned_raters=3, raters_per_item=2)
    assert study.state == Study.State.OPEN
    assert study.items.filter(kind=Item.Kind.REAL).count() == 3
    assert set(Candidate.objects.filter(item__study=study).values_list("producer__kind", flat=True)) == {
        "volunteers", "model", "sparcfire"}
    assert Assignment.objects.filter(study=study).count() == 3 * 2
    # the sources' masks really differ, so a rater has something to judge
    hashes = {c.mask.content_hash for c in Candidate.objects.filter(item__study=study, item__galaxy__name="rg0")}
    assert len(hashes) == 3
