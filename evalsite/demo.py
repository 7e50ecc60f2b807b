"""First-start set-up for ``./tasks.sh run``: accounts, the demo survey, and the demo pipeline.

Every step checks what is already there, so running it on each start is safe. The heavy part runs as a
background job (``demo_pipeline`` on the ``training`` queue) so the site is usable at once and the admin
shows its progress: train the demo model by epochs, evaluate it on its test split and check the quality gate
against the arc finder's masks (their chunks run on the ``generation`` queue meanwhile), continue training
while it fails (a bounded number of rounds), then generate the gated model's masks, open a demo study with
it and add the demo rater. When no round passes, the training run's log says so and no study is opened.
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

LOGINS_FILE = "demo-logins.json"
DEMO_GALAXIES = 200
DEMO_SEED = 1
DEMO_SIZE = 256
DEMO_STUDY = "Demo study (synthetic galaxies)"
# Small and fast (docs/unet.md has the measurements): evalcore.unet.model.demo_config, trained by epochs, not
# by the clock: a busy machine makes the demo slower, never worse. After each round the version is evaluated
# and gated (segmentation.services.quality_gate); one that failed is continued for DEMO_EXTRA_EPOCHS more epochs, at
# most DEMO_ROUNDS rounds in all. Only a version that passed makes masks and enters the demo study.
DEMO_ROUNDS = 3
DEMO_EXTRA_EPOCHS = 30
DEMO_SELECTION = {"synthetic": True, "image_kind": "survey_cutout"}
# The demo study compares spiral-arm masks: its model must pass the gate's spiral checks. A version that also
# passes the bar checks becomes the active version; one that fails them serves the demo study only.
DEMO_STRUCTURES = ("spiral",)


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
    """The demo model's training options (``unet.model.demo_config``: 128 px, a fixed number of epochs)."""
    from evalcore.unet.model import demo_config

    c = demo_config()
    return {"image_size": c.image_size, "epochs": c.epochs, "patience": c.patience, "batch_size": c.batch_size}


def ensure_demo_jobs(stdout) -> None:
    """Queue the demo pipeline once (and the arc finder's masks, which need no model)."""
    from segmentation import jobs
    from segmentation.models import Galaxy, GenerationRun, TrainingRun
    from segmentation.services import training

    if not Galaxy.objects.filter(synthetic=True).exists() or TrainingRun.objects.exists():
        return
    with transaction.atomic():
        run = training.training_start(config=demo_training_config(), selection=DEMO_SELECTION, requested_by="demo")
        if not GenerationRun.objects.filter(source="sparcfire").exists():
            jobs.generation_launch(source="sparcfire", galaxies=Galaxy.objects.filter(synthetic=True),
                                   requested_by="demo")
        queues.enqueue(queues.TRAINING, demo_pipeline, run.pk, job_timeout=6 * 3600,
                       job_prefix="demo-pipeline")
    stdout.write(f"Queued the demo pipeline: training run {run.pk}, then model masks, then the demo study.")


def demo_pipeline(training_run_id: int, wait_seconds: int = 3600) -> str:
    """The RQ job: train until a version passes the quality gate (at most ``DEMO_ROUNDS`` rounds), generate
    its masks, wait for the arc finder's masks, open the demo study with it. When no round passes, it says so
    on the last training run's log and returns without a study: the demo never shows an ungated model."""
    from segmentation.models import Galaxy
    from segmentation.services import generation

    version, message = train_until_gated(training_run_id, wait_seconds=wait_seconds)
    if version is None:
        return message
    galaxies = Galaxy.objects.filter(synthetic=True)
    gen = generation.generation_start(source="model", galaxies=galaxies, model_version=version, requested_by="demo")
    for chunk in gen.chunks.order_by("index"):
        generation.chunk_process(chunk_id=chunk.pk)
    _wait_for_arc_finder(wait_seconds)
    study = ensure_demo_study(version)
    return f"demo study {study.pk} {study.state} with {version.name}, which {message}"


def _wait_for_arc_finder(wait_seconds: float) -> None:
    """The gate compares the model with the arc finder on the same test galaxies: wait for its masks."""
    from segmentation.models import GenerationRun, RunStatus

    deadline = time.monotonic() + wait_seconds
    while GenerationRun.objects.filter(source="sparcfire", status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).exists():
        if time.monotonic() > deadline:
            return
        time.sleep(5)


def train_until_gated(training_run_id: int, *, rounds: int | None = None, extra_epochs: int | None = None,
                      wait_seconds: float = 3600) -> tuple[object | None, str]:
    """Run the training run, gate its version; while it fails, continue training for ``extra_epochs`` more
    epochs (a new run from the last checkpoint), at most ``rounds`` rounds, until a version passes the gate's
    checks of ``DEMO_STRUCTURES``. Returns (that version - made active when it passed every check -, "passed
    ...") or (None, the plain reason why there is none)."""
    from segmentation.models import ModelVersion, RunStatus
    from segmentation.services import quality_gate, training

    rounds = rounds or DEMO_ROUNDS
    extra_epochs = extra_epochs or DEMO_EXTRA_EPOCHS
    run_id = training_run_id
    log = logging.getLogger(__name__)
    verdicts = []
    for n in range(1, rounds + 1):
        run = training.run_train(run_id=run_id)
        if run.status != RunStatus.SUCCEEDED:
            return None, f"training run {run.pk} ended {run.status}: {run.error or 'see its log'}"
        version = run.modelversion_set.get()
        _wait_for_arc_finder(wait_seconds)
        try:
            if "evaluation" not in version.metrics:
                quality_gate.evaluate_and_gate(version=version)
            else:
                quality_gate.gate_check(version=version)  # again, now that the arc finder's masks are there
        except Exception:
            log.exception("gating the demo model %s failed", version.name)
        version.refresh_from_db()
        verdicts.append(f"round {n} ({run.total_epochs} epochs, {version.name}): {quality_gate.summary(version)}")
        training.run_log_append(run.pk, f"demo round {n} of {rounds}: {version.name} {quality_gate.summary(version)}")
        if quality_gate.passed(version):
            if not ModelVersion.objects.filter(is_active=True).exists():
                training.model_version_activate(version=version)
            return version, f"passed the quality gate in round {n}"
        if quality_gate.passed(version, structures=DEMO_STRUCTURES):
            message = (f"passed the quality gate's {' and '.join(DEMO_STRUCTURES)} checks in round {n}, which the "
                       f"demo study needs; not made active, because it {quality_gate.summary(version)}")
            training.run_log_append(run.pk, f"demo: {version.name} {message}")
            return version, message
        if n == rounds:
            break
        nxt = training.training_continue(run=run, extra_epochs=extra_epochs, requested_by="demo")
        training.run_log_append(run.pk, f"the demo continues training as run {nxt.pk} ({nxt.total_epochs} epochs)")
        run_id = nxt.pk
    message = (f"NO DEMO MODEL: no version passed the quality gate's {' and '.join(DEMO_STRUCTURES)} checks in "
               f"{rounds} training rounds, so no model masks "
               f"were made and the demo study was not opened. " + " | ".join(verdicts)
               + ". Train longer (python manage.py train --synthetic only) or look at the data.")
    training.run_log_append(run_id, message)
    log.warning(message)
    return None, message


def ensure_demo_study(version):
    """A study over the demo test-split galaxies comparing all three sources, opened, with the demo rater."""
    from evalcore.sky.splits import split_for
    from ratings.jobs import study_render_enqueue
    from ratings.models import Study
    from ratings.services.raters import rater_join
    from ratings.services.studies import study_open, study_set_items
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
        name=DEMO_STUDY, structures=list(DEMO_STRUCTURES), test_split_of=version, planned_items=len(galaxies),
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
    stdout.write("  The demo model trains in the background until it passes the quality gate; watch it under "
                 "Segmentation > Training runs and Model versions.")
