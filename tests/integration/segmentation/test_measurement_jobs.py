"""Measurement runs: chunked measurement through a real Redis and a real (burst) RQ worker, the command's
--enqueue / --resume, and the admin's launch, status, cancel and resume."""
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rq.worker import SimpleWorker

from evalcore.measure import MEASUREMENT_CODE_VERSION
from evalsite import queues
from segmentation import jobs
from segmentation.models import MaskMeasurement, MeasurementChunk, MeasurementRun, RunStatus
from segmentation.services import measurement_runs, measurements
from segmentation.services.masks import mask_store
from tests.factories.measurements import BAR_COLS as COLS
from tests.factories.measurements import BAR_ROWS as ROWS
from tests.factories.measurements import galaxy_with_image, producer, store_bar, store_spiral


@pytest.fixture
def masks(db):
    """Four galaxies with a model bar and spiral mask each, a volunteer bar on the first two, and a not-asked
    spiral (never measured): 10 asked masks."""
    model, crowd = producer("model"), producer("volunteers")
    out = []
    for i in range(4):
        g, im = galaxy_with_image(f"MEAS{i}", redshift=0.05, axis_ratio=0.8, position_angle=10.0,
                                  synthetic=i % 2 == 0, ra=150.0 + i)
        out.append(store_bar(g, im, model, ROWS, COLS))
        out.append(store_spiral(g, im, model, i=i))
        if i < 2:
            out.append(store_bar(g, im, crowd, ROWS, COLS))
    g, im = galaxy_with_image("MEAS-not-asked")
    mask_store(galaxy=g, image=im, structure="spiral", producer=crowd, state="not_asked")
    return out


def work():
    queue = queues.get_queue(queues.GENERATION)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def result_values():
    return {(m.mask_id, m.kind): (m.measured, m.length_kpc, m.pitch_abs, m.result.get("n_arms"))
            for m in MaskMeasurement.objects.all()}


def test_chunks_run_on_a_worker_like_the_command_and_a_bad_mask_fails_alone(masks, redis_conn,
                                                                          django_capture_on_commit_callbacks):
    broken = masks[1]  # a spiral mask whose stored file is not a PNG
    Path(broken.data.path).write_bytes(b"this is not a PNG")
    with django_capture_on_commit_callbacks(execute=True):
        run = jobs.measurement_launch(chunk_size=3)
    assert run.total == 10 and run.chunks.count() == 4  # the not-asked mask is left out
    assert run.code_version == MEASUREMENT_CODE_VERSION
    assert queues.get_queue(queues.GENERATION).count == 4
    work()
    run.refresh_from_db()
    progress = measurement_runs.run_progress(run=run)
    assert run.status == RunStatus.SUCCEEDED
    assert (progress["processed"], progress["done"], progress["failed"]) == (10, 9, 1)
    assert progress["counts"]["created"] == 9 and progress["counts"]["measured"] == 9
    failure = measurement_runs.run_failures(run=run)[0]
    assert failure["mask"] == broken.pk and failure["galaxy"] == "MEAS0" and failure["structure"] == "spiral"
    assert MaskMeasurement.objects.count() == 9
    by_worker = result_values()

    # the same results as measuring in one process
    MaskMeasurement.objects.all().delete()
    summary = measurements.measure_selection()
    assert summary.created == 9 and len(summary.failures) == 1
    assert result_values().keys() == by_worker.keys()
    for key, (measured, kpc, pitch, arms) in result_values().items():
        assert by_worker[key][0] == measured and by_worker[key][3] == arms
        assert by_worker[key][1] == pytest.approx(kpc) and by_worker[key][2] == pytest.approx(pitch)


def test_the_selection_is_the_commands(masks, redis_conn, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = jobs.measurement_launch(source="model", structure="spiral", synthetic="only")
    assert run.total == 2 and run.chunks.count() == 1
    assert run.selection == {"source": "model", "structure": "spiral", "synthetic": "only", "names": None,
                             "split": None, "image_kind": None}
    work()
    assert set(MaskMeasurement.objects.values_list("mask__galaxy__name", "kind")) == {
        ("MEAS0", "spiral"), ("MEAS2", "spiral")}
    with pytest.raises(ValueError, match="chunk size"):
        jobs.measurement_launch(chunk_size=0)
    with pytest.raises(ValueError, match="no galaxy named nobody"):  # the one galaxy selection refuses it
        jobs.measurement_launch(names=["nobody"])
    empty = jobs.measurement_launch(source="sparcfire")  # no arc-finder masks here
    assert empty.total == 0 and empty.status == RunStatus.SUCCEEDED and "Nothing to do" in empty.log


def test_measurement_runs_are_idempotent(masks, redis_conn, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        jobs.measurement_launch(chunk_size=4)
    work()
    rows = dict(MaskMeasurement.objects.values_list("pk", "result"))
    with django_capture_on_commit_callbacks(execute=True):
        again = jobs.measurement_launch(chunk_size=4)
    work()
    again.refresh_from_db()
    progress = measurement_runs.run_progress(run=again)
    assert again.status == RunStatus.SUCCEEDED
    assert (progress["done"], progress["skipped"], progress["counts"]["unchanged"]) == (0, 10, 10)
    assert dict(MaskMeasurement.objects.values_list("pk", "result")) == rows  # same rows, untouched


def test_a_crashed_chunk_is_resumed_without_duplicates(masks, redis_conn, django_capture_on_commit_callbacks):
    run = measurement_runs.measurement_start(chunk_size=10)
    chunk = run.chunks.get()
    # A worker that died half-way leaves the chunk running with some masks measured.
    measurement_runs.chunk_process(chunk_id=chunk.pk)
    kept = list(MaskMeasurement.objects.order_by("pk").values_list("pk", flat=True)[:4])
    MaskMeasurement.objects.exclude(pk__in=kept).delete()
    MeasurementChunk.objects.filter(pk=chunk.pk).update(status=RunStatus.RUNNING)
    MeasurementRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.measurement_resume(run=run) == 1
    work()
    chunk.refresh_from_db()
    assert (chunk.done, chunk.skipped, chunk.attempts, chunk.status) == (6, 4, 2, RunStatus.SUCCEEDED)
    assert MaskMeasurement.objects.count() == 10
    assert set(kept) <= set(MaskMeasurement.objects.values_list("pk", flat=True))  # kept, not made again


def test_a_cancelled_run_stops_and_can_be_resumed(masks, redis_conn, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = jobs.measurement_launch(chunk_size=5)
    measurement_runs.run_cancel(run=run)
    work()  # the queued jobs find their chunks cancelled
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and not MaskMeasurement.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.measurement_resume(run=run) == 2
    work()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED and MaskMeasurement.objects.count() == 10


def command(*args):
    out = io.StringIO()
    call_command("measure_masks", "--no-progress", *args, stdout=out)
    return out.getvalue()


def test_the_command_enqueues_resumes_and_follows_a_run(masks, redis_conn, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out = command("--enqueue", "--detach", "--structure", "bar", "--chunk-size", "2")
    run = MeasurementRun.objects.get()
    assert f"measurement run {run.pk}: 6 masks in 3 chunks queued" in out
    assert run.requested_by == "command line" and run.selection["structure"] == "bar"
    work()
    # --resume of a finished run has nothing to queue, and following it ends at once with its summary
    out = command("--resume", str(run.pk))
    assert "0 chunks of measurement run" in out
    assert f"measurement run {run.pk} succeeded: 6 of 6 masks (created 6, updated 0, unchanged 0, failed 0)" in out
    with pytest.raises(CommandError, match="no measurement run 999"):
        command("--resume", "999")


@pytest.fixture
def staff(client, django_user_model):
    user = django_user_model.objects.create_user("staffer", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_staff_start_a_measurement_run_from_the_admin_and_watch_it(staff, masks, redis_conn,
                                                                   django_capture_on_commit_callbacks):
    form = staff.get(reverse("admin:segmentation_measurementrun_add"))
    assert form.status_code == 200 and b"Measure masks" in form.content
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(reverse("admin:segmentation_measurementrun_add"), {
            "source": "model", "structure": "", "galaxies": "any", "split": "", "names": "MEAS0\nMEAS1",
            "image_kind": "", "chunk_size": 2})
    run = MeasurementRun.objects.get()
    assert response.status_code == 302 and response.url.endswith(f"/{run.pk}/change/")
    assert run.total == 4 and run.requested_by == "staffer" and run.selection["names"] == ["MEAS0", "MEAS1"]
    page = staff.get(reverse("admin:segmentation_measurementrun_change", args=[run.pk]))
    assert b"model masks, 2 named galaxies" in page.content and b"0</b> of 4 masks" in page.content
    work()
    status = staff.get(reverse("admin:segmentation_measurementrun_status", args=[run.pk])).content.decode()
    assert 'data-status="succeeded"' in status and "<b>4</b> of 4 masks" in status and "4 new" in status
    listing = staff.get(reverse("admin:segmentation_measurementrun_changelist")).content.decode()
    assert "4/4 (0 failed)" in listing
    # cancel, then resume from the page's buttons
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(reverse("admin:segmentation_measurementrun_add"), {
            "source": "", "structure": "", "galaxies": "any", "split": "", "names": "", "image_kind": "",
            "chunk_size": 5})
    second = MeasurementRun.objects.exclude(pk=run.pk).get()
    staff.post(reverse("admin:segmentation_measurementrun_cancel", args=[second.pk]))
    second.refresh_from_db()
    assert second.status == RunStatus.CANCELLED
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(reverse("admin:segmentation_measurementrun_resume", args=[second.pk]))
    work()
    second.refresh_from_db()
    assert second.status == RunStatus.SUCCEEDED and MaskMeasurement.objects.count() == 10


def test_measurement_run_pages_are_staff_only(client, django_user_model, db):
    django_user_model.objects.create_user("rater", password="pw")
    client.login(username="rater", password="pw")
    response = client.get(reverse("admin:segmentation_measurementrun_add"))
    assert response.status_code == 302 and "/login/" in response.url
