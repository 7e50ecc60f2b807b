"""First-start set-up for ``./tasks.sh run``: accounts, the demo survey, and the demo pipeline.

Every step checks what is already there, so running it on each start is safe. The heavy part runs as a
background job (``demo_pipeline`` on the ``training`` queue) so the site is usable at once and the admin
shows its progress: train the demo model, generate model masks, evaluate the model on its test split,
wait for the arc-finder masks (their chunks run on the ``generation`` queue meanwhile), then open a demo
study and add the demo rater to it.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction

from evalsite import queues
from ratings.jobs import study_render_enqueue
from ratings.services.studies import rater_join, study_open, study_set_items
from segmentation.services.model_versions import evaluate_version

LOGINS_FILE = "demo-logins.json"
DEMO_GALAXIES = 200
DEMO_SEED = 1
DEMO_SIZE = 256
DEMO_STUDY = "Demo study (synthetic galaxies)"
# Small and fast (docs/unet.md has the measurements): evalcore.unet.model.demo_config, and a time budget
# so the first start's training ends within 10 minutes on 2 CPU cores whatever the machine.
DEMO_TIME_BUDGET_S = 540
DEMO_SELECTION = {"synthetic": True, "image_kind": "survey_cutout"}


def _logins_path() -> Path:
    return Path(settings.VAR_DIR) / LOGINS_FILE


def _ensure_user(logins: dict, username: str, staff: bool) -> bool:
    User = get_user_model()
    if username in logins and User.objects.filter(username=username).exists():
        return False
    password = secrets.token_urlsafe(12)
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@localhost"})
    user.is_staff = user.is_superuser = staff
    user.set_password(password)
    user.save()
    logins[username] = password
    return True


def ensure_accounts() -> dict[str, str]:
    """The demo admin and the demo rater, created once with random passwords kept in var/ (0600)."""
    path = _logins_path()
    logins = json.loads(path.read_text()) if path.exists() else {}
    changed = _ensure_user(logins, "admin", staff=True)
    changed = _ensure_user(logins, "rater", staff=False) or changed
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(logins, indent=2))
        path.chmod(0o600)
    return logins


def ensure_demo_data(stdout) -> bool:
    """Make and import the demo survey when the database has no galaxies. Returns True if it did."""
    from segmentation.models import Galaxy

    if Galaxy.objects.exists():
        return False
    stdout.write(f"Creating the demo survey: {DEMO_GALAXIES} synthetic galaxies...")
    out = Path(settings.VAR_DIR) / "demo-survey"
    call_command("make_synthetic", n=DEMO_GALAXIES, seed=DEMO_SEED, size=DEMO_SIZE, out=str(out), import_=True)
    return True


def demo_training_config() -> dict:
    """The demo model's training options (``unet.model.demo_config``: 128 px, a schedule that fits the budget)."""
    from evalcore.unet.model import demo_config

    c = demo_config()
    return {"image_size": c.image_size, "epochs": c.epochs, "patience": c.patience, "batch_size": c.batch_size}


def ensure_demo_jobs(stdout) -> None:
    """Queue the demo pipeline once (and the arc finder's masks, which need no model)."""
    from segmentation.models import Galaxy, GenerationRun, TrainingRun
    from segmentation.services import generation, training

    if not Galaxy.objects.filter(synthetic=True).exists() or TrainingRun.objects.exists():
        return
    with transaction.atomic():
        run = training.training_start(config=demo_training_config(), selection=DEMO_SELECTION, requested_by="demo",
                                      time_budget_s=DEMO_TIME_BUDGET_S, enqueue=False)
        if not GenerationRun.objects.filter(source="sparcfire").exists():
            generation.generation_start(source="sparcfire", galaxies=Galaxy.objects.filter(synthetic=True),
                                        requested_by="demo")
        queues.enqueue(queues.TRAINING, "evalsite.demo.demo_pipeline", run.pk, job_timeout=6 * 3600,
                       job_prefix="demo-pipeline")
    stdout.write(f"Queued the demo pipeline: training run {run.pk}, then model masks, then the demo study.")


def demo_pipeline(training_run_id: int, wait_seconds: int = 3600) -> str:
    """The RQ job: train, generate model masks, wait for arc-finder masks, open the demo study."""
    from segmentation.models import Galaxy, GenerationRun, RunStatus
    from segmentation.services import generation, training

    run = training.run_train(run_id=training_run_id)
    if run.status != RunStatus.SUCCEEDED:
        return f"training ended {run.status}"
    version = run.modelversion_set.get()
    galaxies = Galaxy.objects.filter(synthetic=True)
    gen = generation.generation_start(source="model", galaxies=galaxies, model_version=version,
                                      requested_by="demo", enqueue=False)
    for chunk in gen.chunks.order_by("index"):
        generation.chunk_process(chunk_id=chunk.pk)
    _evaluate(version)
    deadline = time.monotonic() + wait_seconds
    while GenerationRun.objects.filter(source="sparcfire", status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        if time.monotonic() > deadline:
            break
        time.sleep(5)
    study = ensure_demo_study(version)
    return f"demo study {study.pk} {study.state}"


def _evaluate(version) -> None:
    """The demo model's quality report on its test split (from the masks just stored; no target): shown on
    the model versions' comparison page. A failure is logged, never stops the demo."""

    try:
        evaluate_version(version=version, n_boot=1000)
    except Exception:
        logging.getLogger(__name__).exception("evaluating the demo model %s failed", version.name)


def ensure_demo_study(version):
    """A study over the demo test-split galaxies comparing all three sources, opened, with the demo rater."""
    from evalcore.sky.splits import split_for
    from ratings.models import Study
    from segmentation.models import Galaxy, Producer

    study = Study.objects.filter(name=DEMO_STUDY).first()
    if study is not None:
        return study
    volunteers = Producer.objects.filter(kind=Producer.Kind.VOLUNTEERS, masks__galaxy__synthetic=True).first()
    arcs = Producer.objects.filter(kind=Producer.Kind.SPARCFIRE).first()
    sources = [p for p in (volunteers, version.producer, arcs) if p is not None]
    galaxies = [g for g in Galaxy.objects.filter(synthetic=True).order_by("pk")
                if split_for(g.ra, g.dec, name=g.name) == "test"][:12]
    study = Study.objects.create(
        name=DEMO_STUDY, structures=["spiral"], test_split_of=version, planned_items=len(galaxies),
        planned_raters=4, raters_per_item=2, practice_items=2, seed=DEMO_SEED,
        instructions="A demonstration over synthetic galaxies. Rank the candidate spiral-arm masks, then rate each.",
        primary_question=("Do astronomers rate the model's spiral masks higher than the volunteers' and the "
                          "arc finder's?"),
        stopping_rule="Close when every planned rater has finished (demo).",
    )
    study.sources.set(sources)
    study_set_items(study=study, galaxies=galaxies)
    study_open(study=study)
    study_render_enqueue(study=study)
    rater = get_user_model().objects.filter(username="rater").first()
    if rater is not None:
        rater_join(study=study, user=rater)
    return study


def print_logins(stdout, url: str) -> None:
    logins = json.loads(_logins_path().read_text()) if _logins_path().exists() else {}
    stdout.write("")
    stdout.write(f"  Rating site:  {url}/rate/")
    stdout.write(f"  Admin:        {url}/admin/")
    stdout.write(f"  Job queues:   {url}/admin/rq/")
    for user, password in logins.items():
        role = "admin (staff)" if user == "admin" else "demo rater"
        stdout.write(f"  {role:14} {user} / {password}")
    stdout.write(f"  (logins are kept in {_logins_path()})")
    stdout.write("  The demo model trains in the background; watch it under Segmentation > Training runs.")
