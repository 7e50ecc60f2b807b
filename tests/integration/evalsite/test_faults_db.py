"""Fault, for real: a database error in the middle of a GZ3D import and of a rating submit.

The error comes from the database itself: a trigger (SQLite or PostgreSQL, whichever the tests run on)
refuses one late write of the transaction, after earlier rows of the same galaxy or item were already
written. The trigger is DDL inside the test's transaction, so it disappears with it.
"""
from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse
from gz3d_samples import write_sample

from ratings.models import Answer, AnswerRevision, Assignment
from segmentation.models import Galaxy, Image, ImportBatch, Mask, VolunteerClassification
from segmentation.services.imports.gz3d import import_gz3d
from tests.factories.studies import spiral_study
from tests.walks import walk_to_items

pytestmark = pytest.mark.django_db
FAULT = "injected fault: the disk is full"


def add_fault_trigger(name: str, table: str, event: str, sqlite_when: str, plpgsql_when: str) -> None:
    """Make the database refuse ``event`` (INSERT/UPDATE) on ``table`` for rows matching the condition."""
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            cur.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} WHEN {sqlite_when} "
                        f"BEGIN SELECT RAISE(ABORT, '{FAULT}'); END")
        elif connection.vendor == "postgresql":
            cur.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                        f"IF {plpgsql_when} THEN RAISE EXCEPTION '{FAULT}' USING ERRCODE = 'disk_full'; END IF; "
                        f"RETURN NEW; END $$")
            cur.execute(f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()")
        else:
            pytest.fail(f"no fault trigger written for {connection.vendor}")


def drop_fault_trigger(name: str, table: str) -> None:
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            cur.execute(f"DROP TRIGGER {name}")
        else:
            cur.execute(f"DROP TRIGGER {name} ON {table}")
            cur.execute(f"DROP FUNCTION {name}()")


def counts() -> dict:
    return {"galaxies": Galaxy.objects.count(), "images": Image.objects.count(), "masks": Mask.objects.count(),
            "classifications": VolunteerClassification.objects.count()}


def test_a_database_error_mid_gz3d_import_leaves_no_rows_of_that_galaxy(tmp_path):
    files = [write_sample(tmp_path / f"gz3d_1-10000{i}_127_77{i}.fits.gz", size=40, manga_id=f"1-10000{i}",
                          iau_name=f"J10000{i}.00+020000.0", ra=150.0 + i / 100) for i in (1, 2, 3)]
    # the bar mask is the last write of a galaxy: its galaxy, image, polygons and spiral mask come before it
    add_fault_trigger(
        "evalsite_fault_mask", "segmentation_mask", "INSERT",
        sqlite_when="NEW.structure = 'bar' AND (SELECT manga_id FROM segmentation_galaxy "
                    "WHERE id = NEW.galaxy_id) = '1-100002'",
        plpgsql_when="NEW.structure = 'bar' AND (SELECT manga_id FROM segmentation_galaxy "
                     "WHERE id = NEW.galaxy_id) = '1-100002'")
    result = import_gz3d([str(p) for p in files], progress=False)

    assert (result.summary.imported, result.summary.failed) == (2, 1)
    where, reason = result.summary.failures[0]
    assert "1-100002" in where and FAULT in reason
    assert set(Galaxy.objects.values_list("manga_id", flat=True)) == {"1-100001", "1-100003"}
    # per good galaxy: one image, spiral + bar masks, 5 spiral and 3 bar volunteers' rows; nothing else
    assert counts() == {"galaxies": 2, "images": 2, "masks": 4, "classifications": 16}
    assert not Mask.objects.filter(galaxy__manga_id="1-100002").exists()
    batch = ImportBatch.objects.get()
    assert batch.summary["failures"][0]["reason"] == reason  # the reason is kept with the batch

    drop_fault_trigger("evalsite_fault_mask", "segmentation_mask")
    again = import_gz3d([str(files[1])], progress=False)
    assert (again.summary.imported, again.summary.failed) == (1, 0)
    assert counts() == {"galaxies": 3, "images": 3, "masks": 6, "classifications": 24}


ANSWERS = {"rank_0": 1, "rank_1": 2, "rank_2": 3, "quality_0": 3, "quality_1": 2, "quality_2": 1, "seconds": "7"}


def rated_item(client):
    study = spiral_study(reference=False)
    walk_to_items(client, study)
    page = client.get(reverse("ratings:study", args=[study.pk]), follow=True)
    return page.redirect_chain[-1][0].rstrip("/").split("/")[-1]


def test_a_database_error_mid_submit_stores_no_answer(client):
    token = rated_item(client)
    # the third panel's answer is refused after the first two were written in the same transaction
    add_fault_trigger("evalsite_fault_answer", "ratings_answer", "INSERT",
                      sqlite_when="NEW.panel_position = 2", plpgsql_when="NEW.panel_position = 2")
    client.raise_request_exception = False
    response = client.post(reverse("ratings:item", args=[token]), ANSWERS)
    assert response.status_code == 500
    assignment = Assignment.objects.get(token=token)
    assert Answer.objects.filter(assignment=assignment).count() == 0
    assert (assignment.submitted_at, assignment.seconds_spent or 0) == (None, 0)

    drop_fault_trigger("evalsite_fault_answer", "ratings_answer")
    assert client.post(reverse("ratings:item", args=[token]), ANSWERS).status_code == 302
    assert Answer.objects.filter(assignment=assignment).count() == 3


def test_a_database_error_mid_edit_keeps_the_earlier_answers(client):
    token = rated_item(client)
    assert client.post(reverse("ratings:item", args=[token]), ANSWERS).status_code == 302
    before = sorted(Answer.objects.filter(assignment__token=token).values_list("panel_position", "rank", "quality",
                                                                               "edits"))
    add_fault_trigger("evalsite_fault_edit", "ratings_answer", "UPDATE",
                      sqlite_when="NEW.panel_position = 2", plpgsql_when="NEW.panel_position = 2")
    client.raise_request_exception = False
    edited = {**ANSWERS, "rank_0": 3, "rank_2": 1, "quality_0": 1, "quality_2": 3}
    assert client.post(reverse("ratings:item", args=[token]), edited).status_code == 500
    after = sorted(Answer.objects.filter(assignment__token=token).values_list("panel_position", "rank", "quality",
                                                                              "edits"))
    assert after == before  # neither the first panel's update nor its revision survived
    assert AnswerRevision.objects.count() == 0
    assert Assignment.objects.get(token=token).seconds_spent == 7
