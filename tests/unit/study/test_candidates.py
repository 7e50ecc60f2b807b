"""Only asked sources are candidates: the plan drops "not asked" masks and says how many and why."""
import pandas as pd

from evalcore.study.design import NOT_ASKED_REASON, TOO_FEW_REASON, plan_candidates
from evalcore.study.stats import summary_tables, validate_answers
from tests.unit.stats_records import answer_row


def test_not_asked_sources_are_dropped_and_counted_per_source_and_structure():
    galaxies = ["g1", "g2", "g3"]
    states = {}
    for g in galaxies:
        for s in ("model", "volunteers", "sparcfire"):
            states[(g, "spiral", s)] = "marked"
        states[(g, "bar", "model")] = "marked"
        states[(g, "bar", "volunteers")] = "not_asked" if g == "g3" else "empty"
        states[(g, "bar", "sparcfire")] = "not_asked"  # the arc finder makes no bar masks
    plan = plan_candidates(states, galaxies, ["spiral", "bar"], ["model", "volunteers", "sparcfire"])
    assert plan.items[("g1", "spiral")] == ["model", "volunteers", "sparcfire"]
    assert plan.items[("g1", "bar")] == ["model", "volunteers"]
    assert ("g3", "bar") not in plan.items  # only the model was asked: nothing to compare
    assert {(d.galaxy, d.source) for d in plan.dropped_candidates} == {
        ("g1", "sparcfire"), ("g2", "sparcfire"), ("g3", "sparcfire"), ("g3", "volunteers")}
    assert all(d.reason == NOT_ASKED_REASON for d in plan.dropped_candidates)
    assert [(d.galaxy, d.structure, d.reason) for d in plan.dropped_items] == [("g3", "bar", TOO_FEW_REASON)]
    message = plan.message()
    assert "Dropped 4 candidate(s)" in message and "sparcfire bar: 3 (g1, g2, g3)" in message
    assert "volunteers bar: 1 (g3)" in message and "not asked" in message
    assert "Dropped 1 item(s) - bar: 1 (g3) - fewer than two asked sources remain" in message


def test_missing_masks_are_kept_for_the_check_and_nothing_dropped_says_nothing():
    plan = plan_candidates({("g1", "spiral", "a"): "marked"}, ["g1"], ["spiral"], ["a", "b"])
    assert plan.items == {("g1", "spiral"): ["a", "b"]} and plan.message() == ""


def _answers(mask_state_of_sparcfire: str) -> pd.DataFrame:
    rows = []
    for i in range(6):
        for pos, (source, quality) in enumerate((("model", 3), ("volunteers", 1), ("sparcfire", 2)), start=1):
            row = answer_row(rater=f"r{i % 3}", galaxy=f"g{i}", structure="bar", source=source, position=pos,
                             rank=1 if source == "model" else 2, tie=source != "model", quality=quality)
            row["mask_state"] = mask_state_of_sparcfire if source == "sparcfire" else "marked"
            rows.append(row)
    return pd.DataFrame(rows)


def test_no_statistic_counts_a_not_asked_candidate():
    kept = validate_answers(_answers("not_asked"))
    assert set(kept["source"]) == {"model", "volunteers"}
    assert not kept["tie"].any()  # volunteers shared rank 2 only with the dropped panel
    tables = summary_tables(_answers("not_asked"), n_boot=20)
    for name, frame in tables.items():
        for column in ("source", "other", "true_source"):
            if column in frame.columns:
                assert "sparcfire" not in set(frame[column].astype(str)), (name, column)
    assert "sparcfire" in set(summary_tables(_answers("marked"), n_boot=20)["quality_summary"]["source"])
