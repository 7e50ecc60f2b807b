"""RQ jobs of the rating app, and the one way to queue each. Every job calls one service; the study's
log and the results cache hold what they did, not RQ."""
from __future__ import annotations

from evalsite import queues
from ratings.models import Study
from ratings.services import results
from ratings.services.studies import study_log, study_render_panels


def render_panels(study_id: int) -> int:
    """Job (queue ``default``): render and store every panel picture of a study."""
    return study_render_panels(study=Study.objects.get(pk=study_id))


def study_render_enqueue(*, study: Study) -> str:
    """Queue ``render_panels`` for this study on the ``default`` queue; returns the job id. If Redis cannot
    take it, that is logged and nothing fails: each panel is then rendered when it is first shown."""

    def queue_unavailable(exc):
        study_log(study=study, action="panel rendering not queued", detail={"reason": str(exc)})

    job_id = queues.enqueue(queues.DEFAULT, render_panels, study.pk, job_prefix=f"study-{study.pk}-panels",
                            job_timeout=3 * 3600, on_failure=queue_unavailable)
    study_log(study=study, action="panel rendering queued", detail={"job": job_id})
    return job_id


def compute_results(study_id: int) -> str:
    """Job (queue ``default``): compute and cache a study's tables and figures; returns the fingerprint."""
    return results.study_results(Study.objects.get(pk=study_id)).fingerprint


def results_enqueue(*, study: Study) -> str | None:
    """Queue ``compute_results`` for the study's current data unless one is already queued (a marker
    younger than ``results.PENDING_SECONDS``); returns the job id, or None when one is pending.
    Raises redis' ConnectionError when Redis is down (the caller computes inline instead)."""
    if results.results_pending(study):
        return None
    job_id = queues.enqueue(queues.DEFAULT, compute_results, study.pk, job_prefix=f"study-{study.pk}-results",
                            job_timeout=3600)
    results.results_mark_pending(study)
    return job_id
