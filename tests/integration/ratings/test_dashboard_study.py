"""The dashboard and export tests' answered study (tests.factories.studies) has every kind of row the
statistics read."""
from __future__ import annotations

from evalcore.study.stats import validate_answers
from ratings.services import exports
from tests.factories.studies import FAILING_RATER_SLOT, answer_study, dashboard_study


def test_the_built_study_has_every_kind_of_row_the_statistics_read(db):
    study = dashboard_study()
    answer_study(study)
    answers = validate_answers(exports.answers_frame(study))
    assert set(answers["item_kind"]) == {"real", "repeat", "attention"}
    assert answers["rater"].nunique() == 6
    assert answers["tie"].any() and answers["flagged_bad_image"].any()
    attention = answers[answers["item_kind"] == "attention"]
    failing = attention.loc[~attention["attention_passed"].astype(bool), "rater"].unique().tolist()
    assert failing == [f"R{FAILING_RATER_SLOT + 1:03d}"]
    guesses = exports.guesses_frame(study)
    assert len(guesses) == 12 and guesses["guessed_source"].isna().sum() == 6
