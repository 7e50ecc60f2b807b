"""The staff dashboard of a rating study: progress always, outcomes only when closed or unlocked (logged),
staff only, figures and their numbers served from the cache."""
from __future__ import annotations

import random

import pytest
from django.contrib.auth.models import Permission

from ratings.models import Assignment, Study, StudyLog
from ratings.services import results
from ratings.services.studies import study_close
from tests.factories.studies import (
    FAILING_RATER_SLOT,
    answer_assignment,
    answer_study,
    dashboard_study,
    make_user,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def open_study(db):
    study = dashboard_study()
    answer_study(study, fraction=0.6)
    return study


def url(study, tail=""):
    return f"/staff/ratings/{study.pk}/{tail}"


def test_while_open_only_progress_is_shown(open_study, admin_client):
    page = admin_client.get(url(open_study))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="outcomes-hidden"' in html and "Unlock results now" in html
    for outcome in ("Quality levels per source", "Pairwise win rates", "Blinding audit", "Mostly well"):
        assert outcome not in html
    progress = results.progress(open_study)
    assert progress.slots_claimed == 6 and 0 < progress.assignments_done < progress.assignments_total
    for r in progress.raters:
        assert 0 < r.done <= r.total and r.median_seconds is not None
        assert (r.done == r.total) == (r.pseudonym == f"R{FAILING_RATER_SLOT + 1:03d}")
        assert f"<td>{r.pseudonym}</td>" in html and f"<td>{r.done}</td><td>{r.total}</td>" in html
    assert f"{progress.assignments_done} / {progress.assignments_total}" in html
    # nothing outcome-related is reachable by URL either, and nothing was computed
    assert admin_client.get(url(open_study, "export/raw.csv")).status_code == 409
    assert admin_client.get(url(open_study, "plot/abc/quality.png")).status_code == 409
    assert admin_client.get(url(open_study, "table/abc/quality_summary.csv")).status_code == 409
    assert results._listing(results.cache_dir(open_study)) == ([], [])


def test_unlock_needs_a_reason_and_is_logged(open_study, admin_client, admin):
    page = admin_client.post(url(open_study, "unlock/"), {"reason": "  "}, follow=True)
    assert "give a reason" in page.content.decode()
    open_study.refresh_from_db()
    assert open_study.results_unlocked_at is None

    admin_client.post(url(open_study, "unlock/"), {"reason": "safety check of the pipeline"})
    open_study.refresh_from_db()
    assert open_study.state == Study.State.OPEN and open_study.results_unlocked_at is not None
    entry = StudyLog.objects.get(study=open_study, action=results.UNLOCK_ACTION)
    assert entry.user == admin.username and entry.reason == "safety check of the pipeline"
    assert entry.detail["answers"] == results.progress(open_study).answers > 0
    html = admin_client.get(url(open_study)).content.decode()
    assert "Quality levels per source" in html and "safety check of the pipeline" in html
    again = admin_client.post(url(open_study, "unlock/"), {"reason": "twice"}, follow=True)
    assert "already visible" in again.content.decode()
    assert StudyLog.objects.filter(study=open_study, action=results.UNLOCK_ACTION).count() == 1


def test_after_close_every_outcome_section_with_its_numbers(open_study, admin_client):
    study_close(study=open_study)
    page = admin_client.get(url(open_study))
    html = page.content.decode()
    for title in ("Quality levels per source", "Ranked first", "Pairwise win rates", "Differences between sources",
                  "Reliability", "Position bias", "Blinding audit", "Raters"):
        assert f">{title}</h2>" in html
    assert "Unlock results now" not in html
    # the attention rule is stated and the failing rater listed by pseudonym
    failing = html.split('id="failing-raters"')[1].split("</ul>")[0]
    assert f"R{FAILING_RATER_SLOT + 1:03d}" in failing and "excluded from the primary analysis" in failing
    assert "Attention rule:" in html and "fewer than 80%" in html
    assert "No sign that raters could tell" in html or "Too few guesses" in html or "could tell" in html
    fingerprint = page.context["fingerprint"]
    for name in ("quality", "first_choice", "pairwise", "alpha", "position", "blinding"):
        src = f"/staff/ratings/{open_study.pk}/plot/{fingerprint}/{name}.png"
        assert src in html, name
        png = admin_client.get(src)
        assert png.status_code == 200 and png["Content-Type"] == "image/png"
        assert b"".join(png.streaming_content).startswith(PNG_MAGIC)
    table = admin_client.get(url(open_study, f"table/{fingerprint}/pairwise_wins.csv"))
    body = b"".join(table.streaming_content).decode()
    assert body.splitlines()[0].startswith("study,structure,source,other,n,n_above")
    assert len(body.splitlines()) == 1 + 6  # three sources: six ordered pairs
    assert admin_client.get(url(open_study, f"plot/{fingerprint}/nope.png")).status_code == 404


def test_results_are_cached_until_the_answers_change(open_study, admin_client):
    study_close(study=open_study)
    first = results.study_results(open_study, n_boot=20)
    second = results.study_results(open_study, n_boot=20)
    assert first.computed and not second.computed and first.fingerprint == second.fingerprint
    for name, frame in first.tables.items():
        assert frame.equals(second.tables[name]), name
    # a change of the data (reopened here by hand to let a rater answer one more item) is recomputed
    Study.objects.filter(pk=open_study.pk).update(state=Study.State.OPEN)
    open_study.refresh_from_db()
    todo = Assignment.objects.filter(study=open_study, rater__isnull=False, submitted_at__isnull=True).first()
    answer_assignment(todo, random.Random(0))
    third = results.study_results(open_study, n_boot=20)
    assert third.computed and third.fingerprint != first.fingerprint
    assert third.tables["exclusions"]["n_evaluations"].sum() == first.tables["exclusions"]["n_evaluations"].sum() + 1
    assert results._listing(results.cache_dir(open_study)) == ([third.fingerprint], [])


def test_staff_only(open_study, client):
    study_close(study=open_study)
    paths = ["", "export/raw.csv", "export/summary.csv", "plot/x/quality.png", "table/x/raters.csv"]
    for tail in paths:
        response = client.get(url(open_study, tail))
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], tail
    assert client.get("/staff/ratings/").status_code == 302
    client.force_login(open_study.raters.first().user)  # a rater of this very study
    for tail in paths:
        assert client.get(url(open_study, tail)).status_code == 403, tail
    assert client.post(url(open_study, "unlock/"), {"reason": "x"}).status_code == 403


def test_staff_without_the_change_permission_cannot_unlock(open_study, client):
    viewer = make_user("viewer", staff=True)
    client.force_login(viewer)
    html = client.get(url(open_study)).content.decode()
    assert "Unlock results now" not in html and "Only an admin" in html
    assert client.post(url(open_study, "unlock/"), {"reason": "peek"}).status_code == 403
    open_study.refresh_from_db()
    assert open_study.results_unlocked_at is None
    viewer.user_permissions.add(Permission.objects.get(codename="change_study"))
    client.force_login(viewer)
    client.post(url(open_study, "unlock/"), {"reason": "interim report agreed with the PI"})
    open_study.refresh_from_db()
    assert open_study.results_unlocked_at is not None


def test_index_lists_studies(open_study, admin_client):
    html = admin_client.get("/staff/ratings/").content.decode()
    assert f'href="/staff/ratings/{open_study.pk}/"' in html and open_study.name in html


def test_a_large_study_is_computed_by_a_worker_not_in_the_request(open_study, admin_client, redis_conn, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    from rq.worker import SimpleWorker

    from evalsite import queues

    study_close(study=open_study)
    monkeypatch.setattr(results, "INLINE_MAX_ANSWERS", 10)  # this study counts as large
    with django_capture_on_commit_callbacks(execute=True):  # django-rq sends jobs on commit
        page = admin_client.get(url(open_study)).content.decode()
        admin_client.get(url(open_study))  # a reload does not queue it twice
    assert 'id="computing"' in page and 'http-equiv="refresh"' in page and "Pairwise win rates" not in page
    queue = queues.get_queue(queues.DEFAULT)
    assert queue.count == 1 and results.cached_results(open_study) is None
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert results.cached_results(open_study) is not None
    page = admin_client.get(url(open_study)).content.decode()
    assert 'id="computing"' not in page and "Pairwise win rates</h2>" in page
    assert not [f for f in results._listing(results.cache_dir(open_study))[1] if f.startswith("pending-")]


def test_headline_states_each_share_with_its_own_denominator(open_study, admin_client):
    study_close(study=open_study)
    page = admin_client.get(url(open_study))
    summary = results.study_results(open_study).tables["quality_summary"]
    html = page.content.decode()
    for row in summary.itertuples():
        assert (f"{row.structure}, {row.source}: <b>{100 * row.share_mostly_well_or_better:.1f}%</b>" in html
                and f"({row.n_mostly_well_or_better} of {row.n_rated} rated" in html), row.source
