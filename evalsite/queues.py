"""The three RQ queues of evalsite and the one way to put a job on them.

- ``default``: short jobs (imports, exports, measurements);
- ``training``: model training, hours long;
- ``generation``: mask-generation chunks, shared by any number of workers on any number of machines.

Workers for torch jobs run as ``python manage.py rqworker --worker-class rq.worker.SimpleWorker QUEUE``
so torch is imported once per worker, not once per job (see README, "Workers").

django-rq enqueues on transaction commit: inside ``atomic()`` the job is sent when the transaction
commits, so a job never sees rows that were rolled back.
"""
import uuid

import django_rq

DEFAULT = "default"
TRAINING = "training"
GENERATION = "generation"
ALL = (DEFAULT, TRAINING, GENERATION)


def get_queue(name: str):
    if name not in ALL:
        raise ValueError(f"unknown queue {name!r}; expected one of {', '.join(ALL)}")
    return django_rq.get_queue(name)


def enqueue(name: str, func, *args, job_prefix: str = "job", **kwargs) -> str:
    """Enqueue ``func(*args, **kwargs)`` on queue ``name`` and return the job id.

    The id is chosen here, so it is known even inside a transaction, where django-rq only sends the job
    when the transaction commits (and returns no job object).
    """
    job_id = f"{job_prefix}-{uuid.uuid4().hex[:12]}"
    get_queue(name).enqueue(func, *args, job_id=job_id, **kwargs)
    return job_id
