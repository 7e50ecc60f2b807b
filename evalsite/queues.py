"""The three RQ queues of evalsite and the one way to put a job on them.

- ``default``: short jobs (imports, exports);
- ``training``: model training, hours long;
- ``generation``: survey-scale chunks (mask generation and measurement runs), shared by any number of
  workers on any number of machines.

Workers for torch jobs run as ``python manage.py rqworker --worker-class rq.worker.SimpleWorker QUEUE``
so torch is imported once per worker, not once per job (see README, "Workers").

Jobs are sent when the transaction commits, so a job never sees rows that were rolled back; when Redis
cannot take a job, callers record why on their run row (``on_failure``) and the admin offers Resume.
"""
import uuid

import django_rq
from django.db import transaction
from redis.exceptions import RedisError

DEFAULT = "default"
TRAINING = "training"
GENERATION = "generation"
ALL = (DEFAULT, TRAINING, GENERATION)


def get_queue(name: str):
    if name not in ALL:
        raise ValueError(f"unknown queue {name!r}; expected one of {', '.join(ALL)}")
    return django_rq.get_queue(name)


def enqueue(name: str, func, *args, job_prefix: str = "job", on_failure=None, **kwargs) -> str:
    """Enqueue ``func(*args, **kwargs)`` on queue ``name`` when the current transaction commits (at once
    outside one) and return the job id, chosen here so callers can record it before the job exists.

    ``on_failure(exc)`` is called when Redis cannot take the job (down, unreachable), so the caller can
    record the reason on its run row instead of the request failing after the rows were committed;
    without it the error propagates.
    """
    if name not in ALL:
        raise ValueError(f"unknown queue {name!r}; expected one of {', '.join(ALL)}")
    job_id = f"{job_prefix}-{uuid.uuid4().hex[:12]}"

    def send():
        try:
            django_rq.get_queue(name, commit_mode="auto").enqueue(func, *args, job_id=job_id, **kwargs)
        except RedisError as exc:
            if on_failure is None:
                raise
            on_failure(exc)

    transaction.on_commit(send)
    return job_id
