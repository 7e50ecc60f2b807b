"""CSV exports of a rating study: the dashboard downloads and ``manage.py export_ratings``."""
from __future__ import annotations

import csv
import io
import os
import stat

import pandas as pd
import pytest
from django.core.management import CommandError, call_command

from evalcore.study.stats import read_summary_csv, summary_tables
from ratings.models import Answer, AnswerRevision, Assignment
from ratings.services import exports
from ratings.services.studies import PanelAnswer, answer_submit, study_close
from segmentation.models import Galaxy
from tests.factories.studies import FORMULA_COMMENT, answer_study, dashboard_study, make_user

N_BOOT = 40  # small: the round trip compares exact numbers, not interval quality


@pytest.fixture
def closed_study(db):
    study = dashboard_study()
    answer_study(study)
    study_close(study=study)
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
    from_db = summary_tables(exports.answers_frame(closed_study), exports.guesses_frame(closed_study), n_boot=N_BOOT)
    assert_tables_equal(from_csv, from_db)
    # not vacuous: the study has outcomes in every section the page shows
    assert len(from_db["quality_summary"]) == 3 and from_db["pairwise_wins"]["n"].gt(0).all()
    assert from_db["attention"]["fails_rule"].sum() == 1
    assert from_db["blinding_audit"]["n_answered"].iloc[-1] == 6


def test_raw_export_has_one_row_per_answer_with_every_column_of_the_issue(closed_study, staff_client):
    raw = download(staff_client, closed_study, "raw").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert tuple(rows[0]) == exports.RAW_COLUMNS
    assert len(rows) == Answer.objects.filter(assignment__study=closed_study).count()
    # issue 7 section 3: rater pseudonym and profile, galaxy identifiers, synthetic, structure, source,
    # producer, mask hash, position, rank, tie, quality label and level, comment, flags, kind, time, dates, edits
    for column in ("rater", "career_stage", "experience", "helped_build", "galaxy", "ra", "dec", "synthetic",
                   "structure", "source", "producer", "producer_version", "producer_parameters", "mask_sha256",
                   "panel_position", "rank", "tie", "quality", "quality_label", "comment", "flagged_bad_image",
                   "item_kind", "seconds", "created_at", "updated_at", "edited"):
        assert column in exports.RAW_COLUMNS
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
        assert exports.safe_cell(value) == cell


def test_summary_export_holds_every_table(closed_study, staff_client):
    from ratings.services.results import study_results

    body = download(staff_client, closed_study, "summary")
    tables = read_summary_csv(io.BytesIO(body))
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


@pytest.mark.parametrize("kind, flag", [("raw", []), ("summary", ["--summary"]), ("guesses", ["--guesses"]),
                                        ("revisions", ["--revisions"])])
def test_command_writes_the_same_bytes_as_the_download(closed_study, staff_client, tmp_path, kind, flag):
    out = tmp_path / f"{kind}.csv"
    call_command("export_ratings", closed_study.name, "--out", str(out), "--no-progress", *flag)
    assert out.read_bytes() == download(staff_client, closed_study, kind)
    by_id = tmp_path / f"{kind}-by-id.csv"
    call_command("export_ratings", str(closed_study.pk), "--out", str(by_id), "--no-progress", *flag)
    assert by_id.read_bytes() == out.read_bytes()


def test_command_refuses_unknown_studies_and_hidden_outcomes(db, tmp_path):
    study = dashboard_study(name="running")
    answer_study(study, n_raters=2, fraction=0.5)
    out = tmp_path / "x.csv"
    with pytest.raises(CommandError, match="no study with id or name 'nope'.*running"):
        call_command("export_ratings", "nope", "--out", str(out))
    with pytest.raises(CommandError, match="hidden while it is open"):
        call_command("export_ratings", "running", "--out", str(out))
    with pytest.raises(CommandError, match="does not exist"):
        study_close(study=study)
        call_command("export_ratings", "running", "--out", str(tmp_path / "missing" / "x.csv"))
    assert not out.exists()


def test_identifiers_read_back_exactly_with_pandas_defaults(closed_study, staff_client):
    """SDSS objIDs (about 1.2e18, beyond float64's exact integers) on some galaxies and none on others: a
    default pandas.read_csv must give every one back exactly, and the documented dtypes."""
    galaxies = list(Galaxy.objects.filter(item__study=closed_study).distinct().order_by("pk"))
    objids = {}
    for i, g in enumerate(galaxies):
        if i % 3:  # two in three have one, differing in the last digits only
            objids[g.name] = str(1237648720693755918 + i)
        Galaxy.objects.filter(pk=g.pk).update(sdss_objid=objids.get(g.name), nsa_id=(10_000 + i) if i % 2 else None,
                                              manga_id=f"1-{500 + i}" if i % 4 else None)
    frame = pd.read_csv(io.BytesIO(download(staff_client, closed_study, "raw")))
    assert str(frame["sdss_objid"].dtype) == "int64" and str(frame["nsa_id"].dtype) == "int64"
    assert str(frame["item"].dtype) == "int64" and pd.api.types.is_string_dtype(frame["manga_id"])
    read = frame.groupby("galaxy")["sdss_objid"].first().to_dict()
    assert read == {g.name: int(objids.get(g.name, exports.NO_ID)) for g in galaxies}
    assert frame.loc[frame["sdss_objid"] != exports.NO_ID, "sdss_objid"].nunique() == len(objids)
    nsa = frame.groupby("galaxy")["nsa_id"].first().to_dict()
    assert nsa == {g.name: (10_000 + i) if i % 2 else exports.NO_ID for i, g in enumerate(galaxies)}
    manga = frame.groupby("galaxy")["manga_id"].first().to_dict()
    for i, g in enumerate(galaxies):
        assert (manga[g.name] == f"1-{500 + i}") if i % 4 else pd.isna(manga[g.name])


@pytest.fixture
def edited_study(db):
    """A closed study in which one answer was changed twice and one item reopened and saved unchanged."""
    study = dashboard_study(name="edited")
    answer_study(study, n_raters=3)
    assignment = Assignment.objects.filter(study=study, rater__isnull=False, submitted_at__isnull=False,
                                           item__kind="real").order_by("pk").first()
    stored = {a.panel_position: a for a in assignment.answers.all()}
    n = len(assignment.panel_order)
    for quality in ((stored[0].quality + 1) % 4, (stored[0].quality + 2) % 4):
        answers = [PanelAnswer(i, stored[i].rank, quality if i == 0 else stored[i].quality)
                   for i in range(n)]
        answer_submit(assignment=assignment, answers=answers, seconds=3.0)
    Assignment.objects.filter(pk=assignment.pk).update(first_shown_at=assignment.submitted_at)
    study_close(study=study)
    study.changed = Answer.objects.get(assignment=assignment, panel_position=0)
    study.first_quality = stored[0].quality
    return study


def test_raw_export_carries_edit_counts_sequence_positions_and_times(edited_study, staff_client):
    rows = list(csv.DictReader(io.StringIO(download(staff_client, edited_study, "raw").decode())))
    changed = edited_study.changed
    assignment = changed.assignment
    row = next(r for r in rows if r["rater"] == assignment.rater.pseudonym
               and int(r["sequence_position"]) == assignment.position + 1 and r["panel_position"] == "1")
    assert (row["edits"], row["edited"], row["quality"]) == ("2", "true", str(changed.quality))
    assert row["submitted_at"] == assignment.submitted_at.isoformat()
    assert row["first_shown_at"] == assignment.submitted_at.isoformat()  # set so in the fixture
    assert sum(int(r["edits"]) for r in rows) == AnswerRevision.objects.filter(
        answer__assignment__study=edited_study).count() == 2
    others = [r for r in rows if r is not row]
    assert all(r["first_shown_at"] == "" for r in others if r["rater"] != row["rater"])  # never shown in a page
    positions = {(r["rater"], int(r["sequence_position"])) for r in rows}
    assert positions == {(a.rater.pseudonym, a.position + 1) for a in Assignment.objects.filter(
        study=edited_study, answers__isnull=False).select_related("rater")}


def test_revisions_export_has_every_earlier_value_in_order(edited_study, staff_client):
    rows = list(csv.DictReader(io.StringIO(download(staff_client, edited_study, "revisions").decode())))
    assert tuple(rows[0]) == exports.REVISION_COLUMNS
    assert len(rows) == AnswerRevision.objects.filter(answer__assignment__study=edited_study).count() == 2
    changed = edited_study.changed
    first, second = (AnswerRevision.objects.filter(answer=changed).order_by("replaced_at", "pk"))
    assert [r["revision"] for r in rows] == ["1", "2"]
    # revision 1 holds the first answer, revision 2 the value of the first change
    assert [int(r["quality"]) for r in rows] == [edited_study.first_quality, (edited_study.first_quality + 1) % 4]
    assert [int(r["quality"]) for r in rows] == [first.quality, second.quality]
    assert rows[0]["valid_from"] == changed.created_at.isoformat()
    assert rows[0]["replaced_at"] == first.replaced_at.isoformat() == rows[1]["valid_from"]
    assert rows[1]["replaced_at"] == second.replaced_at.isoformat()
    assert {r["rater"] for r in rows} == {changed.assignment.rater.pseudonym}
    assert rows[0]["sequence_position"] == str(changed.assignment.position + 1) and rows[0]["panel_position"] == "1"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_the_exported_file_follows_the_umask(closed_study, tmp_path, umask, mode):
    out = tmp_path / "answers.csv"
    old = os.umask(umask)
    try:
        call_command("export_ratings", closed_study.name, "--out", str(out), "--no-progress")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert not list(tmp_path.glob(".*.part"))
