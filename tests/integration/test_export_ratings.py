"""CSV exports of a rating study: the dashboard downloads and ``manage.py export_ratings``."""
from __future__ import annotations

import csv
import io

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from evalcore.study.stats import summary_tables
from ratings import export, services
from ratings.models import Answer
from tests.integration.test_dashboard_study import FORMULA_COMMENT, answer_study, build_study, make_user

N_BOOT = 40  # small: the round trip compares exact numbers, not interval quality


@pytest.fixture
def closed_study(db):
    study = build_study()
    answer_study(study)
    services.study_close(study=study)
    return study


@pytest.fixture
def staff_client(client, db):
    client.force_login(make_user("boss", superuser=True))
    return client


def download(client, study, kind: str) -> bytes:
    response = client.get(f"/staff/ratings/{study.pk}/export/{kind}.csv")
    assert response.status_code == 200, response.content[:300]
    assert response.streaming and response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    return b"".join(response.streaming_content)


def assert_tables_equal(left: dict, right: dict) -> None:
    assert list(left) == list(right)
    for name in left:
        a, b = left[name].reset_index(drop=True), right[name].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_categorical=False, obj=name)


def test_raw_export_round_trips_into_the_statistics_with_identical_numbers(closed_study, staff_client):
    raw = download(staff_client, closed_study, "raw")
    guesses = download(staff_client, closed_study, "guesses")
    from_csv = summary_tables(pd.read_csv(io.BytesIO(raw)), pd.read_csv(io.BytesIO(guesses)), n_boot=N_BOOT)
    from_db = summary_tables(export.answers_frame(closed_study), export.guesses_frame(closed_study), n_boot=N_BOOT)
    assert_tables_equal(from_csv, from_db)
    # not vacuous: the study has outcomes in every section the page shows
    assert len(from_db["quality_summary"]) == 3 and from_db["pairwise_wins"]["n"].gt(0).all()
    assert from_db["attention"]["fails_rule"].sum() == 1
    assert from_db["blinding_audit"]["n_answered"].iloc[-1] == 6


def test_raw_export_has_one_row_per_answer_with_every_column_of_the_issue(closed_study, staff_client):
    raw = download(staff_client, closed_study, "raw").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert tuple(rows[0]) == export.RAW_COLUMNS
    assert len(rows) == Answer.objects.filter(assignment__study=closed_study).count()
    # issue 7 section 3: rater pseudonym and profile, galaxy identifiers, synthetic, structure, source,
    # producer, mask hash, position, rank, tie, quality label and level, comment, flags, kind, time, dates, edits
    for column in ("rater", "career_stage", "experience", "helped_build", "galaxy", "ra", "dec", "synthetic",
                   "structure", "source", "producer", "producer_version", "producer_parameters", "mask_sha256",
                   "panel_position", "rank", "tie", "quality", "quality_label", "comment", "flagged_bad_image",
                   "item_kind", "seconds", "created_at", "updated_at", "edited"):
        assert column in export.RAW_COLUMNS
    first = rows[0]
    answer = Answer.objects.select_related("candidate__mask", "assignment__rater").get(
        assignment__rater__pseudonym=first["rater"], assignment__study=closed_study,
        candidate__mask__content_hash=first["mask_sha256"], assignment__item_id=int(first["item"]),
        panel_position=int(first["panel_position"]) - 1)
    assert int(first["quality"]) == answer.quality and int(first["rank"]) == answer.rank
    assert first["quality_label"] == answer.get_quality_display()
    assert {r["item_kind"] for r in rows} == {"real", "repeat", "attention"}
    assert {r["source"] for r in rows} == {"model", "volunteers", "sparcfire"}


def test_formula_cells_are_neutralised(closed_study, staff_client):
    raw = download(staff_client, closed_study, "raw").decode("utf-8")
    comments = {r["comment"] for r in csv.DictReader(io.StringIO(raw))}
    assert "'" + FORMULA_COMMENT in comments and FORMULA_COMMENT not in comments
    for value, cell in (("@SUM(A1)", "'@SUM(A1)"), ("+1", "'+1"), ("-2+3", "'-2+3"), ("\tx", "'\tx"),
                        (-2.5, "-2.5"), (3, "3"), (True, "true"), (None, ""), (float("nan"), ""), ("ok", "ok")):
        assert export.safe_cell(value) == cell


def test_summary_export_holds_every_table(closed_study, staff_client):
    from ratings.results import study_results

    body = download(staff_client, closed_study, "summary")
    tables = export.read_summary_csv(io.BytesIO(body))
    cached = study_results(closed_study, with_plots=False).tables
    assert set(tables) == set(cached) - {name for name, t in cached.items() if t.empty}
    want = cached["quality_summary"]
    got = tables["quality_summary"]
    # the file's column order is the union of all tables', so compare columns as a set, values exactly
    assert set(got.columns) == {c for c in want.columns if want[c].notna().any()}
    for column in ("share_mostly_well_or_better", "share_ci_low", "mean_level", "n_rated"):
        assert got[column].tolist() == want[column].tolist(), column
    assert got["source"].tolist() == want["source"].astype(str).tolist()
    assert tables["attention"]["fails_rule"].tolist() == cached["attention"]["fails_rule"].tolist()


@pytest.mark.parametrize("kind, flag", [("raw", []), ("summary", ["--summary"]), ("guesses", ["--guesses"])])
def test_command_writes_the_same_bytes_as_the_download(closed_study, staff_client, tmp_path, kind, flag):
    out = tmp_path / f"{kind}.csv"
    call_command("export_ratings", closed_study.name, "--out", str(out), "--no-progress", *flag)
    assert out.read_bytes() == download(staff_client, closed_study, kind)
    by_id = tmp_path / f"{kind}-by-id.csv"
    call_command("export_ratings", str(closed_study.pk), "--out", str(by_id), "--no-progress", *flag)
    assert by_id.read_bytes() == out.read_bytes()


def test_command_refuses_unknown_studies_and_hidden_outcomes(db, tmp_path):
    study = build_study(name="running")
    answer_study(study, n_raters=2, fraction=0.5)
    out = tmp_path / "x.csv"
    with pytest.raises(CommandError, match="no study with id or name 'nope'.*running"):
        call_command("export_ratings", "nope", "--out", str(out))
    with pytest.raises(CommandError, match="hidden while it is open"):
        call_command("export_ratings", "running", "--out", str(out))
    with pytest.raises(CommandError, match="does not exist"):
        services.study_close(study=study)
        call_command("export_ratings", "running", "--out", str(tmp_path / "missing" / "x.csv"))
    assert not out.exists()
