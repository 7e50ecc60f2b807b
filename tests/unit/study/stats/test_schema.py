"""The answers table is validated at the entry of every public function, with specific messages."""
import numpy as np
import pandas as pd
import pytest

from evalcore.study import stats
from evalcore.study.stats import SchemaError, summary_tables, validate_answers
from tests.unit.stats_records import answer_row, reference_study


@pytest.fixture
def answers():
    return pd.DataFrame([
        answer_row(rater="r1", galaxy="g1", structure="bar", source="model", position=1, rank=1, quality=3),
        answer_row(rater="r1", galaxy="g1", structure="bar", source="volunteers", position=2, rank=2, quality=1),
        answer_row(rater="r2", galaxy="g1", structure="bar", source="model", position=2, rank=1, quality=2.0,
                   tie=True),
        answer_row(rater="r2", galaxy="g1", structure="bar", source="volunteers", position=1, rank=1, quality=2.0,
                   tie=True),
    ])


PUBLIC = ["quality_levels", "quality_summary", "position_bias", "position_contrast", "first_choice", "pairwise_wins",
          "ordinal_model", "rank_tests", "krippendorff_alpha", "intra_rater", "attention", "per_rater",
          "primary_answers", "summary_tables"]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_function_refuses_a_table_without_a_column(answers, name):
    with pytest.raises(SchemaError, match="lacks column.*quality"):
        getattr(stats, name)(answers.drop(columns="quality"))


@pytest.mark.parametrize("column, value, message", [
    ("quality", 4, "quality must be 0, 1, 2, 3 or empty"),
    ("rank", 0, "rank must be an integer >= 1"),
    ("panel_position", 1.5, "panel_position must be an integer >= 1"),
    ("item_kind", "practice", "item_kind must be one of real, repeat, attention"),
    ("seconds", -3, "seconds must be >= 0"),
    ("rater", None, "rater is empty"),
    ("tie", "maybe", "tie must be true/false"),
    ("quality", "good", "quality must be numeric"),
])
def test_bad_values_are_named(answers, column, value, message):
    bad = answers.astype({column: object})
    bad.loc[1, column] = value
    with pytest.raises(SchemaError, match=message):
        validate_answers(bad)


def test_structural_rules(answers):
    with pytest.raises(SchemaError, match="tie disagrees with the ranks"):
        validate_answers(answers.assign(tie=False))
    with pytest.raises(SchemaError, match="more than one row per"):
        validate_answers(pd.concat([answers, answers.iloc[[0]]]))
    with pytest.raises(SchemaError, match="attention_passed is empty"):
        validate_answers(answers.assign(item_kind="attention"))
    flagged = answers.copy()
    flagged.loc[0, "flagged_bad_image"] = True
    with pytest.raises(SchemaError, match="flagged_bad_image differs between candidates"):
        validate_answers(flagged)
    with pytest.raises(SchemaError, match="must be a pandas DataFrame"):
        validate_answers([{"rater": "r1"}])


def test_an_attention_check_may_show_a_decoy_from_a_source_already_on_screen(answers):
    check = answers.iloc[:2].assign(item_kind="attention", attention_passed=True, item="decoy", source="model")
    assert len(validate_answers(pd.concat([answers, check], ignore_index=True))) == 6
    with pytest.raises(SchemaError, match="more than one row per"):
        validate_answers(pd.concat([answers, check.assign(item_kind="real")], ignore_index=True))


def test_validation_returns_a_normalised_copy_and_leaves_the_input_alone(answers):
    text = answers.astype(str).replace({"nan": "", "None": ""})
    checked = validate_answers(text)
    assert checked["tie"].dtype == bool and checked["quality"].tolist() == [3.0, 1.0, 2.0, 2.0]
    assert text["quality"].tolist() == ["3.0", "1.0", "2.0", "2.0"] and text["tie"].tolist()[2] == "True"


def test_a_csv_round_trip_gives_identical_tables(tmp_path):
    answers = reference_study()
    answers.loc[answers.index[:3], "flagged_bad_image"] = True  # one whole evaluation flagged
    path = tmp_path / "answers.csv"
    answers.to_csv(path, index=False)
    direct = summary_tables(answers, n_boot=30)
    again = summary_tables(pd.read_csv(path), n_boot=30)
    assert direct.keys() == again.keys()
    for name in direct:
        pd.testing.assert_frame_equal(direct[name].reset_index(drop=True), again[name].reset_index(drop=True),
                                      check_dtype=False, obj=name)
    assert direct["exclusions"].set_index("structure").loc["spiral", "n_real_flagged_bad_image"] == 1
    assert not np.isnan(direct["quality_summary"]["share_mostly_well_or_better"]).all()
