"""Fault, for real: Redis stopped and restarted during a study.

Each test starts its own ``redis-server`` on a free loopback port (never the machine's Redis) and points
the queues at it. Rating pages must not need Redis; a job launched while Redis is down fails loudly and
its run stays resumable; jobs lost by a Redis restart (no persistence) are brought back by resuming.
"""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time

import pytest
import redis
from django.urls import reverse
from rq.job import Job
from rq.worker import SimpleWorker

from evalsite import queues
from ratings.models import Answer, Assignment
from segmentation import jobs
from segmentation.models import GenerationRun, Mask, RunStatus
from segmentation.services import generation
from tests.factories.studies import spiral_study
from tests.walks import walk_to_items


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A throw-away redis-server on 127.0.0.1 with no persistence: a restart empties it."""

    def __init__(self, directory):
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn.ping()
                return
            except redis.exceptions.ConnectionError:
                assert self.proc.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server did not answer within 30 s"
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
        except redis.exceptions.ConnectionError:
            return False


@pytest.fixture
def private_redis(tmp_path, settings):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (./tasks.sh installs Debian's redis-server)")
    server = PrivateRedis(tmp_path)
    server.start()
    settings.REDIS_URL = server.url
    settings.RQ_QUEUES = {name: {**conf, "URL": server.url} for name, conf in settings.RQ_QUEUES.items()}
    yield server
    server.stop()


def work():
    queue = queues.get_queue(queues.GENERATION)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def test_rating_pages_keep_working_while_redis_is_down(db, client, private_redis):
    study = spiral_study()
    walk_to_items(client, study)
    private_redis.stop()
    assert not private_redis.answers()

    assert client.get(reverse("ratings:home")).status_code == 200
    page = client.get(reverse("ratings:study", args=[study.pk]), follow=True)
    assert page.status_code == 200
    token = page.redirect_chain[-1][0].rstrip("/").split("/")[-1]
    pictures = set(re.findall(r'src="([^"]+\.png)"', page.content.decode()))
    assert pictures
    for url in pictures:
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
    answer = {"rank_0": 1, "rank_1": 2, "rank_2": 3, "quality_0": 3, "quality_1": 2, "quality_2": 1, "seconds": "9"}
    assert client.post(reverse("ratings:item", args=[token]), answer).status_code == 302
    assert Answer.objects.filter(assignment__token=token).count() == 3
    assert Assignment.objects.get(token=token).submitted_at is not None
    # signing out and in again: sessions and the log-in rate limit live in the database
    client.post(reverse("logout"))
    login = client.post(reverse("login"), {"username": "ann", "password": "a-long-pass-123"})
    assert login.status_code == 302
    assert client.get(reverse("ratings:study", args=[study.pk]), follow=True).status_code == 200


def test_a_launch_while_redis_is_down_is_marked_failed_and_resumes_after_restart(
        db, private_redis, django_capture_on_commit_callbacks):
    study = spiral_study(reference=False)
    galaxies = [item.galaxy_id for item in study.items.filter(kind="real")]
    private_redis.stop()
    with django_capture_on_commit_callbacks(execute=True):
        jobs.generation_launch(source="sparcfire", galaxies=galaxies, chunk_size=2)
    run = GenerationRun.objects.get()
    # the run and its two chunks are recorded as failed with the reason, so the admin offers Resume
    assert run.status == RunStatus.FAILED and run.total == len(galaxies)
    assert "queue unavailable" in run.error and "Connection" in run.error
    job_ids = list(run.chunks.values_list("job_id", flat=True))
    assert len(job_ids) == 2 and set(run.chunks.values_list("status", flat=True)) == {RunStatus.FAILED}

    private_redis.start()
    queue = queues.get_queue(queues.GENERATION)
    assert queue.count == 0 and not any(Job.exists(j, connection=queue.connection) for j in job_ids)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.generation_resume(run=run) == 2
    assert queues.get_queue(queues.GENERATION).count == 2
    work()
    run.refresh_from_db()
    progress = generation.run_progress(run=run)
    assert run.status == RunStatus.SUCCEEDED and progress["done"] == len(galaxies) and progress["failed"] == 0
    assert Mask.objects.filter(producer=run.producer, structure="spiral", is_current=True).count() == len(galaxies)


def test_jobs_lost_by_a_redis_restart_are_resumed_from_the_database(
        db, private_redis, django_capture_on_commit_callbacks):
    study = spiral_study(reference=False)
    galaxies = [item.galaxy_id for item in study.items.filter(kind="real")]
    with django_capture_on_commit_callbacks(execute=True):
        run = jobs.generation_launch(source="sparcfire", galaxies=galaxies, chunk_size=2)
    assert queues.get_queue(queues.GENERATION).count == 2
    private_redis.stop()
    private_redis.start()  # no persistence: the queued jobs are gone
    assert queues.get_queue(queues.GENERATION).count == 0
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and all(run.chunks.values_list("job_id", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.generation_resume(run=run) == 2
    work()
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert generation.run_progress(run=run)["done"] == len(galaxies)
    masks = Mask.objects.filter(producer=run.producer, is_current=True)
    assert masks.count() == 2 * len(galaxies)  # spiral + not-asked bar per galaxy, none twice
