"""Chunked mask generation through a real Redis and a real (burst) RQ worker."""
import numpy as np
import pytest
from django.core.files.base import ContentFile
from rq.worker import SimpleWorker

from evalsite import queues
from segmentation import jobs
from segmentation.models import GenerationChunk, Mask, RunStatus
from segmentation.services import generation
from segmentation.services.galaxies import galaxy_upsert, image_store


def spiral_rgb(size=96, pitch_deg=20.0, seed=0):
    """A two-armed logarithmic spiral on an exponential disk, as an RGB picture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r, theta = np.hypot(x, y) + 1e-6, np.arctan2(y, x)
    b = np.tan(np.radians(pitch_deg))
    arms = sum(np.cos(2 * (theta - np.log(r) / b) + k * np.pi) for k in range(1))
    light = np.exp(-r / (size / 6)) * (1 + 0.8 * np.clip(arms, 0, None)) + rng.normal(0, 0.01, r.shape)
    grey = np.clip(light / light.max(), 0, 1)
    return np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=2)


@pytest.fixture
def galaxies(db):
    out = []
    for i in range(3):
        g, _ = galaxy_upsert(name=f"gen{i}", defaults={"ra": 150.0 + i, "dec": 2.0})
        image, _ = image_store(galaxy=g, kind="survey_cutout", rgb=spiral_rgb(seed=i))
        out.append((g, image))
    broken = out[2][1]
    broken.file.save("broken.png", ContentFile(b"this is not a PNG"), save=True)
    return out


def work(redis_conn):
    queue = queues.get_queue(queues.GENERATION)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_chunks_run_on_a_worker_and_a_bad_image_fails_only_its_galaxy(galaxies, redis_conn,
                                                                      django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = jobs.generation_launch(source="sparcfire", galaxies=[g for g, _ in galaxies], chunk_size=2)
    assert run.chunks.count() == 2
    assert queues.get_queue(queues.GENERATION).count == 2
    work(redis_conn)
    run.refresh_from_db()
    progress = generation.run_progress(run=run)
    assert (progress["done"], progress["failed"]) == (2, 1)
    assert run.status == RunStatus.SUCCEEDED
    failures = [f for c in GenerationChunk.objects.filter(run=run) for f in c.failures]
    assert failures[0]["galaxy"] == "gen2" and "identify" in failures[0]["reason"].lower()
    masks = Mask.objects.filter(producer=run.producer, is_current=True)
    assert masks.filter(structure="spiral").count() == 2
    spiral = masks.filter(structure="spiral").first()
    assert spiral.fractions().shape == (96, 96)
    assert set(np.unique(spiral.fractions())) <= {0.0, 1.0}
    assert spiral.details["code_version"] == run.producer.version


def test_generation_is_idempotent(galaxies, redis_conn, django_capture_on_commit_callbacks):
    good = [g for g, _ in galaxies[:2]]
    with django_capture_on_commit_callbacks(execute=True):
        jobs.generation_launch(source="sparcfire", galaxies=good)
    work(redis_conn)
    n = Mask.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        again = jobs.generation_launch(source="sparcfire", galaxies=good)
    assert again.total == 0 and again.status == RunStatus.SUCCEEDED
    assert again.selection["already_done"] == 2
    assert Mask.objects.count() == n


def test_a_crashed_chunk_is_resumed_without_duplicates(galaxies, redis_conn, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = generation.generation_start(source="sparcfire", galaxies=[g for g, _ in galaxies[:2]], chunk_size=2)
    chunk = run.chunks.get()
    # A worker that died half-way leaves the chunk running with one galaxy stored.
    generation.chunk_process(chunk_id=chunk.pk)
    first = Mask.objects.filter(producer=run.producer).first()
    Mask.objects.exclude(galaxy=first.galaxy).delete()
    GenerationChunk.objects.filter(pk=chunk.pk).update(status=RunStatus.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.generation_resume(run=run) == 1
    work(redis_conn)
    chunk.refresh_from_db()
    assert (chunk.done, chunk.skipped, chunk.status) == (1, 1, RunStatus.SUCCEEDED)
    assert Mask.objects.filter(producer=run.producer, is_current=True).count() == 4


def test_a_galaxy_whose_masks_cannot_be_stored_fails_alone(galaxies):
    """A batch is stored in one transaction; when it fails the galaxies are stored one by one, so only the
    culprit fails (here a source that returns a mask of the wrong size for one galaxy)."""
    from segmentation.services.sources.registry import MaskOutput

    good = [im for _, im in galaxies[:2]]
    culprit = good[1]

    class Source:
        batch_size = 8

        def generate(self, images):
            out = []
            for im in images:
                h = im.height if im.pk != culprit.pk else im.height // 2
                k = np.zeros((h, im.width), np.int64)
                k[10:20, 10:20] = 1
                out.append({s: MaskOutput("marked", k, 1, {"test": True}) for s in ("spiral", "bar")})
            return out

    run = generation.generation_start(source="sparcfire", galaxies=[im.galaxy_id for im in good])
    chunk = generation.chunk_process(chunk_id=run.chunks.get().pk, source_impl=Source())

    assert (chunk.done, chunk.failed) == (1, 1)
    assert chunk.failures[0]["galaxy"] == culprit.galaxy.name and "does not match image" in chunk.failures[0]["reason"]
    assert Mask.objects.filter(producer=run.producer, image=good[0]).count() == 2
    assert not Mask.objects.filter(producer=run.producer, image=culprit).exists()
