"""The whole survey pipeline, stage by stage: import, model masks, arc-finder masks, measurement of every
source's masks, export - galaxies/s, CPU per galaxy and its share, and each stage against the model's raw
forward pass measured in the same run; with database rows and bytes and media files and bytes per stage.

    .venv/bin/python bench/survey_pipeline.py [--galaxies 32] [--workers 1,2] [--redis-db 12]
        [--postgres postgres://postgres@127.0.0.1:5432/] [--json OUT.json]

Everything runs in a throw-away site (bench/_django_env.py): a SQLite file in WAL mode (or, with
``--postgres``, a PostgreSQL database created on that server and dropped at the end), a media folder under
a temporary directory, and its own Redis database (``--redis-db``; flushed only if empty or marked by the
helper). Steps:

1. synthesis (input of the bench, not a pipeline stage): ``--galaxies`` synthetic galaxies written by
   ``evalcore.synthetic.survey`` (survey cutouts and GZ3D-layout volunteer files, ``--image-px`` px);
2. **import**: ``import_synthetic_survey`` in this process (cutouts + catalogue, GZ3D files with truth and
   volunteer masks, volunteer masks reprojected onto the cutouts), as ``make_synthetic --import`` does;
3. a tiny model: the U-Net (``--size`` px input, resnet18) trained for ``--train-s`` seconds on the truth
   masks (its maps look like a model's, so measuring them costs what it will), then the model's **raw
   forward pass** on the survey cutouts, one thread, batches of 8: the yardstick;
4. **model generation**, **arc-finder generation**, **measurement** (every current mask of every source on
   every image, as ``measure_masks --enqueue`` does): chunked runs done by 1, then 2, real
   ``manage.py rqworker --worker-class rq.worker.SimpleWorker generation --burst`` subprocesses
   (OMP_NUM_THREADS=1), the previous run's results deleted in between. galaxies/s = galaxies / (last
   chunk finished - first chunk started); CPU = the chunks' CPU time (``timings["cpu_s"]``: worker start-up
   and model loading, once per worker, left out);
5. **export**: ``export_masks`` (one FITS file per galaxy and the measurement catalogue) in this process.

CPU share = a stage's CPU seconds per galaxy over the pipeline's (1-worker runs). "x forward" = a stage's
CPU seconds per galaxy over the raw forward pass's (one thread, CPU seconds too: on a shared machine CPU
time stays put when wall time does not). Database rows and bytes, media files and
bytes are what each stage adds (SQLite: pages of each table and index; PostgreSQL: pg_total_relation_size).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from _django_env import release_redis_db, setup_env  # noqa: E402

THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "EVALSITE_TORCH_THREADS": "1"}
STAGES = ("import cutouts", "import GZ3D", "model generation", "arc-finder generation", "measurement", "export")


# --- what the site holds ----------------------------------------------------------------------------------
def db_tables() -> dict[str, tuple[int, int]]:
    """{table: (rows, bytes)} of the project's tables (bytes: table + its indexes)."""
    from django.apps import apps
    from django.db import connection

    tables = sorted({m._meta.db_table for app in ("segmentation", "ratings") for m in apps.get_app_config(app)
                     .get_models()})
    out = {}
    with connection.cursor() as cur:
        sizes = {}
        if connection.vendor == "sqlite":
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cur.execute("SELECT m.tbl_name, SUM(s.pgsize) FROM dbstat s JOIN sqlite_master m ON m.name = s.name "
                        "GROUP BY m.tbl_name")
            sizes = dict(cur.fetchall())
        for table in tables:
            cur.execute(f'SELECT count(*) FROM "{table}"')
            rows = cur.fetchone()[0]
            if connection.vendor == "postgresql":
                cur.execute("SELECT pg_total_relation_size(%s)", [table])
                size = cur.fetchone()[0]
            else:
                size = sizes.get(table, 0)
            out[table] = (rows, int(size or 0))
    return out


def media_files(root: Path) -> dict[str, tuple[int, int]]:
    """{top folder: (files, bytes)} under the media root."""
    out: dict[str, list[int]] = {}
    for path in root.rglob("*"):
        if path.is_file():
            top = path.relative_to(root).parts[0]
            entry = out.setdefault(top, [0, 0])
            entry[0] += 1
            entry[1] += path.stat().st_size
    return {k: (v[0], v[1]) for k, v in out.items()}


def snapshot(media_root: Path) -> dict:
    return {"db": db_tables(), "media": media_files(media_root)}


def added(before: dict, after: dict) -> dict:
    """What a stage added: per table rows and bytes, per media folder files and bytes."""
    def diff(a, b):
        keys = set(a) | set(b)
        out = {k: (b.get(k, (0, 0))[0] - a.get(k, (0, 0))[0], b.get(k, (0, 0))[1] - a.get(k, (0, 0))[1])
               for k in keys}
        return {k: v for k, v in sorted(out.items()) if v != (0, 0)}
    return {"db": diff(before["db"], after["db"]), "media": diff(before["media"], after["media"])}


# --- stages -------------------------------------------------------------------------------------------
def in_process(fn) -> tuple[object, float, float]:
    """(result, wall s, CPU s of this process) of ``fn()``."""
    t, c = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - t, time.process_time() - c


def train_tiny_model(size: int, budget_s: float):
    """The U-Net at ``size`` px trained for about ``budget_s`` s on the survey's true masks (every fifth
    galaxy validates: a small survey may have no sky cell of the validation split), stored and activated as
    a ModelVersion the way a training run stores one."""
    from evalcore.unet.model import UNetConfig
    from evalcore.unet.train import train
    from segmentation.services import training

    selection = {"synthetic": True, "image_kind": "survey_cutout", "label_producer": training.truth_producer().pk}
    items = training.labelled_galaxies(selection=selection)
    val = [training._sample_loader(i) for i in items[::5]]
    fit = [training._sample_loader(i) for k, i in enumerate(items) if k % 5]
    config = UNetConfig(image_size=size, epochs=50, batch_size=8, patience=50)
    with tempfile.TemporaryDirectory() as d:
        result = train(config, fit, val, checkpoint_dir=d, threads=2, time_budget_s=budget_s)
    version = training.model_version_create(run=None, result=result, items=items, name="survey-pipeline-unet")
    # a model trained for 30 s is there to be timed, not to serve: activated past the quality gate, recorded
    return training.model_version_activate(version=version, override_gate=True, by="bench/survey_pipeline.py")


def raw_forward(version, repeats: int = 3) -> float:
    """(wall s, CPU s, runtime) per galaxy of ``Predictor.forward`` alone, one thread, batches of 8, on the
    survey's cutouts already preprocessed (medians of ``repeats``)."""
    import torch

    from evalcore.unet.data import preprocess
    from evalcore.unet.infer import Predictor
    from segmentation.models import Image
    from segmentation.selectors.images import image_rgb

    with version.weights.open("rb") as fh:
        predictor = Predictor(fh.read(), threads=1, batch_size=8)
    x = [preprocess(image_rgb(im), predictor.config) for im in Image.objects.filter(kind="survey_cutout")]
    batches = [torch.stack(x[s:s + 8]) for s in range(0, len(x), 8)]
    predictor.forward(batches[0])
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        for b in batches:
            predictor.forward(b)
        wall.append((time.perf_counter() - t) / len(x))
        cpu.append((time.process_time() - c) / len(x))
    return statistics.median(wall), statistics.median(cpu), predictor.describe()


def delete_masks(producer) -> None:
    from segmentation.models import Mask

    for m in Mask.objects.filter(producer=producer).exclude(data=""):
        m.data.delete(save=False)
    Mask.objects.filter(producer=producer).delete()


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def on_workers(env: dict, workers: int, start) -> dict:
    """Start chunked runs with ``start()`` (it enqueues them and returns {part: run}), let ``workers`` burst
    workers do them all, and time it; CPU and counts also per part (e.g. per mask source)."""
    runs = start()
    procs, t0, c0 = [], time.perf_counter(), children_cpu_s()
    for _ in range(workers):
        procs.append(subprocess.Popen([sys.executable, "manage.py", "rqworker", "--worker-class",
                                       "rq.worker.SimpleWorker", "generation", "--burst"], cwd=ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    errors = [p.communicate()[1] for p in procs]
    wall, worker_cpu = time.perf_counter() - t0, children_cpu_s() - c0
    if any(p.returncode for p in procs):
        raise SystemExit("a worker failed:\n" + "\n".join(e[-2000:] for e in errors))
    parts, chunks = {}, []
    for part, run in runs.items():
        mine = list(run.chunks.values("started_at", "finished_at", "timings", "done", "skipped", "failed",
                                      "failures"))
        chunks += mine
        parts[part] = {"cpu_s": sum(c["timings"].get("cpu_s", 0.0) for c in mine),
                       "done": sum(c["done"] for c in mine), "failed": sum(c["failed"] for c in mine)}
    span = (max(c["finished_at"] for c in chunks) - min(c["started_at"] for c in chunks)).total_seconds()
    load = sum(c["timings"].get("load_s", 0.0) for c in chunks) / workers  # model loading, once per worker
    reasons = sorted({f["reason"][:120] for c in chunks for f in c["failures"]})
    return {"workers": workers, "chunks": len(chunks), "span_s": span - load, "load_s": load, "wall_s": wall,
            "cpu_s": sum(c["timings"].get("cpu_s", 0.0) for c in chunks), "worker_cpu_s": worker_cpu,
            "done": sum(c["done"] for c in chunks), "skipped": sum(c["skipped"] for c in chunks),
            "failed": sum(c["failed"] for c in chunks), "failure_reasons": reasons[:5], "parts": parts}


# --- main ---------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=32)
    ap.add_argument("--image-px", type=int, default=256)
    ap.add_argument("--size", type=int, default=192, help="network input, px (the default model's)")
    ap.add_argument("--train-s", type=float, default=30.0, help="training time budget of the tiny model, s")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--chunk-size", type=int, default=16, help="galaxies (generation) per chunk")
    ap.add_argument("--measure-chunk-size", type=int, default=32, help="masks (measurement) per chunk")
    ap.add_argument("--redis-db", type=int, default=12)
    ap.add_argument("--postgres", default="", help="PostgreSQL server URL: run on a database created there "
                                                   "(and dropped) instead of SQLite")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    ap.add_argument("--survey", type=int, default=640_000, help="galaxies of the survey to project to")
    ap.add_argument("--gz3d-galaxies", type=int, default=30_000, help="of them, with GZ3D drawings")
    ap.add_argument("--scale-workers", default="1,8,32,128", help="worker counts of the projected wall times")
    ap.add_argument("--from-json", type=Path, help="only print the projection of an earlier run's --json file")
    args = ap.parse_args()
    if args.from_json:
        print_tables(json.loads(args.from_json.read_text()))
        project(json.loads(args.from_json.read_text()), args.survey,
                [int(w) for w in args.scale_workers.split(",")], args.gz3d_galaxies)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still drop the database and free Redis
    t_start = time.perf_counter()
    worker_counts = [int(w) for w in args.workers.split(",")]

    tmp = Path(tempfile.mkdtemp(prefix="survey-pipeline-"))
    database_url, pg_name = None, None
    if args.postgres:
        import psycopg

        pg_name = f"evalsite_bench_pipeline_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres.rstrip("/") + "/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_name}"')
        database_url = args.postgres.rstrip("/") + "/" + pg_name
    try:
        env = setup_env(tmp, redis_db=args.redis_db, database_url=database_url)
        env.update(THREADS)
        report = run_pipeline(args, env, tmp, worker_counts)
    finally:
        release_redis_db(args.redis_db)
        if pg_name:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(args.postgres.rstrip("/") + "/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    report["total_wall_s"] = time.perf_counter() - t_start
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    print_tables(report)
    project(report, args.survey, [int(w) for w in args.scale_workers.split(",")], args.gz3d_galaxies)
    print(f"\nwhole bench: {report['total_wall_s']:.0f} s" + (f"; figures in {args.json}" if args.json else ""))


PART_LABELS = {"model": "model", "sparcfire": "arc finder", "volunteers": "volunteers", "truth": "truth"}


def projection_rows(report: dict, survey: int, gz3d: int) -> list[tuple]:
    """(label, galaxies of the survey it concerns, core-hours, db rows, db bytes, files, file bytes) per stage,
    measurement per mask source. GZ3D import and volunteer masks concern ``gz3d`` galaxies; true masks exist
    for synthetic galaxies only (left out)."""
    n, stages, out = report["galaxies"], report["stages"], []
    for name in STAGES:
        st = stages[name]
        add, extra = st["added"], st.get("files", {})
        rows = sum(v[0] for v in add["db"].values())
        db_b = sum(v[1] for v in add["db"].values())
        files = sum(v[0] for v in add["media"].values()) + sum(v[0] for v in extra.values())
        f_b = sum(v[1] for v in add["media"].values()) + sum(v[1] for v in extra.values())
        parts = st["runs"][0].get("parts")
        if name == "measurement" and parts:
            done = sum(p["done"] for p in parts.values()) or 1
            for part, p in sorted(parts.items()):
                if part == "truth":
                    continue
                m = gz3d if part == "volunteers" else survey
                share = p["done"] / done  # rows and bytes split by the masks measured
                out.append((f"measurement, {PART_LABELS.get(part, part)}", m, p["cpu_s"] / n * m / 3600,
                            rows * share / n * m, db_b * share / n * m, 0, 0))
            continue
        m = gz3d if name == "import GZ3D" else survey
        out.append((name, m, st["runs"][0]["cpu_s"] / n * m / 3600, rows / n * m, db_b / n * m, files / n * m,
                    f_b / n * m))
    return out


def project(report: dict, survey: int, worker_counts: list[int], gz3d: int = 30_000) -> None:
    """Survey-scale figures from a run's per-galaxy ones: core-hours and wall time on W workers (one per free
    core, the stage's galaxies shared evenly), database rows and bytes, media and export files and bytes."""
    print(f"\n== projected to a survey of {survey:,} galaxies, {gz3d:,} of them with GZ3D drawings (per-galaxy "
          f"CPU of the 1-worker runs; {report['database']} bytes) ==")
    print(f"{'stage':<26} {'galaxies':>8} {'core-h':>7} " + " ".join(f"{f'{w} workers':>10}" for w in worker_counts)
          + f" {'db rows':>11} {'db GB':>6} {'files':>10} {'file GB':>7}")
    totals = [0.0, 0, 0, 0, 0]
    for label, m, core_h, rows, db_b, files, f_b in projection_rows(report, survey, gz3d):
        for i, v in enumerate((core_h, rows, db_b, files, f_b)):
            totals[i] += v
        walls = " ".join(f"{_hours(core_h / w):>10}" for w in worker_counts)
        print(f"{label:<26} {m:>8,} {core_h:>7.1f} {walls} {rows:>11,.0f} {db_b / 1e9:>6.2f} {files:>10,.0f} "
              f"{f_b / 1e9:>7.1f}")
    walls = " ".join(f"{_hours(totals[0] / w):>10}" for w in worker_counts)
    print(f"{'all stages':<26} {'':>8} {totals[0]:>7.1f} {walls} {totals[1]:>11,.0f} {totals[2] / 1e9:>6.2f} "
          f"{totals[3]:>10,.0f} {totals[4] / 1e9:>7.1f}")
    print(f"raw forward of the model alone: {report['raw_forward_cpu_s'] * survey / 3600:.1f} core-hours")


def _hours(h: float) -> str:
    return f"{h:.1f} h" if h >= 1 else f"{h * 60:.0f} min"


def run_pipeline(args, env: dict, tmp: Path, worker_counts: list[int]) -> dict:
    from django.db import connection

    from evalcore.measure import MEASUREMENT_CODE_VERSION
    from evalcore.synthetic import survey
    from segmentation import jobs
    from segmentation.models import Galaxy, GenerationRun, Image, ImportBatch, Mask, MaskMeasurement, Producer
    from segmentation.services import exports
    from segmentation.services.imports import gz3d as gz3d_import
    from segmentation.services.imports.batches import batch_start
    from segmentation.services.imports.images import import_image_folder
    from segmentation.services.imports.reproject import reproject_galaxy_masks
    from segmentation.services.imports.synthetic import read_survey_settings, volunteer_release

    media = Path(env["MEDIA_ROOT"])
    n = args.galaxies
    load = os.getloadavg()
    print(f"{n} galaxies at {args.image_px} px; database {connection.vendor}; {os.cpu_count()} cores, load "
          f"{load[0]:.1f} at the start; files under {tmp}", flush=True)

    settings = survey.SurveySettings(n=n, seed=21, size=args.image_px, out=tmp / "survey")
    _, synth_wall, _ = in_process(lambda: survey.make_survey(settings, workers=2))
    print(f"synthesis (input, not a stage): {synth_wall:.1f} s", flush=True)

    stages: dict[str, dict] = {}
    # import_synthetic_survey's two parts, timed apart: every galaxy of a survey has a cutout and a
    # catalogue row, only some have GZ3D volunteer drawings (about 30,000 of the 640,000)
    directory = tmp / "survey"
    syn = read_survey_settings(directory)
    batch = batch_start(kind=ImportBatch.Kind.SYNTHETIC, source=str(directory), arguments=syn)
    before = snapshot(media)
    _, wall, cpu = in_process(lambda: import_image_folder(
        directory=directory / "cutouts", catalogue_path=directory / survey.CATALOGUE_NAME,
        kind=Image.Kind.SURVEY_CUTOUT, batch=batch, progress=False))
    stages["import cutouts"] = {"runs": [{"workers": 1, "span_s": wall, "wall_s": wall, "cpu_s": cpu,
                                          "in_process": True}], "added": added(before, snapshot(media))}
    print(f"import cutouts + catalogue: {wall:.1f} s", flush=True)

    def gz3d():
        result = gz3d_import.import_gz3d([directory / "gz3d"], release=volunteer_release(syn), progress=False,
                                         jobs=1, arguments=syn)
        reproject_galaxy_masks(galaxy_ids=result.galaxy_ids, target_kind=Image.Kind.SURVEY_CUTOUT,
                               summary=result.summary, batch=batch)
        return result
    before = snapshot(media)
    _, wall, cpu = in_process(gz3d)
    stages["import GZ3D"] = {"runs": [{"workers": 1, "span_s": wall, "wall_s": wall, "cpu_s": cpu,
                                       "in_process": True}], "added": added(before, snapshot(media))}
    print(f"import GZ3D files + reprojection onto the cutouts: {wall:.1f} s", flush=True)

    t = time.perf_counter()
    version = train_tiny_model(args.size, args.train_s)
    train_s = time.perf_counter() - t
    fwd_wall, fwd_s, runtime = raw_forward(version)
    print(f"tiny model trained in {train_s:.0f} s (best validation loss {version.metrics.get('best_val_loss'):.4f}); "
          f"raw forward {fwd_s * 1000:.1f} CPU ms ({fwd_wall * 1000:.1f} ms wall) per galaxy, mode "
          f"{runtime['mode']}, 1 thread", flush=True)

    galaxy_ids = list(Galaxy.objects.values_list("pk", flat=True))

    def generation_stage(name, source, producer_of):
        before = snapshot(media)
        runs = []
        for i, k in enumerate(worker_counts):
            if i:
                delete_masks(producer_of())

            def start():
                return {source: jobs.generation_launch(
                    source=source, galaxies=galaxy_ids, chunk_size=args.chunk_size,
                    model_version=version if source == "model" else None, requested_by="bench")}
            runs.append(on_workers(env, k, start))
            print(f"{name}, {k} worker(s): {n / runs[-1]['span_s']:.2f} galaxies/s", flush=True)
        stages[name] = {"runs": runs, "added": added(before, snapshot(media))}

    generation_stage("model generation", "model", lambda: version.producer)
    generation_stage("arc-finder generation", "sparcfire",
                     lambda: GenerationRun.objects.filter(source="sparcfire").latest("created_at").producer)

    before = snapshot(media)
    runs = []
    sources = sorted(set(Mask.objects.filter(is_current=True).values_list("producer__kind", flat=True)))
    for i, k in enumerate(worker_counts):
        if i:
            MaskMeasurement.objects.all().delete()
        # one run per mask source, all enqueued before the workers start: CPU per source, one span
        runs.append(on_workers(env, k, lambda: {kind: jobs.measurement_launch(
            source=kind, chunk_size=args.measure_chunk_size, requested_by="bench") for kind in sources}))
        print(f"measurement, {k} worker(s): {n / runs[-1]['span_s']:.2f} galaxies/s "
              f"({runs[-1]['done']} masks)", flush=True)
    stages["measurement"] = {"runs": runs, "added": added(before, snapshot(media))}
    masks_by = {}
    for kind, structure, state in Mask.objects.filter(is_current=True).values_list("producer__kind", "structure",
                                                                                  "state"):
        key = f"{kind} {structure}"
        masks_by.setdefault(key, {"asked": 0, "not_asked": 0})
        masks_by[key]["not_asked" if state == "not_asked" else "asked"] += 1
    measured_by = {}
    for kind, structure in MaskMeasurement.objects.values_list("mask__producer__kind", "kind"):
        measured_by[f"{kind} {structure}"] = measured_by.get(f"{kind} {structure}", 0) + 1

    out = tmp / "export"
    before = snapshot(media)
    summary, wall, cpu = in_process(lambda: exports.export_selection(
        galaxies=exports.galaxies_selection(), out_dir=out, image_kind=None, sources=None,
        catalogue_name="measurements", progress=None))
    files = [p for p in out.rglob("*") if p.is_file()]
    stages["export"] = {"runs": [{"workers": 1, "span_s": wall, "wall_s": wall, "cpu_s": cpu, "in_process": True}],
                        "added": added(before, snapshot(media)),
                        "files": {"export": (len(files), sum(p.stat().st_size for p in files))}}
    print(f"export: {wall:.1f} s", flush=True)

    return {"galaxies": n, "image_px": args.image_px, "database": connection.vendor, "load_at_start": load,
            "synthesis_s": synth_wall, "train_s": train_s, "raw_forward_cpu_s": fwd_s, "raw_forward_wall_s": fwd_wall,
            "runtime": runtime,
            "producers": list(Producer.objects.values_list("kind", "name")),
            "masks": masks_by, "measurements": measured_by, "stages": stages,
            "export_summary": summary.lines(), "measurement_code": MEASUREMENT_CODE_VERSION}



def print_tables(report: dict) -> None:
    n, stages = report["galaxies"], report["stages"]
    fwd_s, fwd_wall = report["raw_forward_cpu_s"], report["raw_forward_wall_s"]
    masks_by, measured_by = report["masks"], report["measurements"]
    cpu_per = {s: stages[s]["runs"][0]["cpu_s"] / n for s in STAGES}
    total_cpu = sum(cpu_per.values())
    print(f"\n== {n} galaxies, stage by stage (raw forward {fwd_s * 1000:.1f} CPU ms per galaxy, 1 thread; "
          f"measurement code {report['measurement_code']}) ==")
    print(f"{'stage':<22} {'workers':>7} {'galaxies/s':>10} {'span s':>7} {'CPU s/galaxy':>12} {'per core-s':>10} "
          f"{'CPU share':>9} {'cores used':>10} {'x forward':>9} {'failed':>6}")
    for s in STAGES:
        for r in stages[s]["runs"]:
            per = r["cpu_s"] / n
            workers = "in proc" if r.get("in_process") else r["workers"]
            share = f"{100 * cpu_per[s] / total_cpu:8.1f}%" if r is stages[s]["runs"][0] else f"{'':>9}"
            print(f"{s:<22} {workers:>7} {n / r['span_s']:>10.2f} {r['span_s']:>7.1f} {per:>12.4f} {1 / per:>10.2f} "
                  f"{share} {r['cpu_s'] / r['span_s']:>10.2f} {per / fwd_s:>9.1f} {r.get('failed', 0):>6}")
    for part, p in sorted(stages["measurement"]["runs"][0].get("parts", {}).items()):
        per = p["cpu_s"] / n
        print(f"{'  ' + PART_LABELS.get(part, part) + ' masks':<22} {1:>7} {'':>10} {'':>7} {per:>12.4f} "
              f"{1 / per if per else 0:>10.2f} {100 * per / total_cpu:8.1f}% {'':>10} {per / fwd_s:>9.1f} "
              f"{p['failed']:>6}")
    print(f"{'raw forward (model)':<22} {'1 thr':>7} {1 / fwd_wall:>10.2f} {'':>7} {fwd_s:>12.4f} {1 / fwd_s:>10.2f} "
          f"{'':>9} {'':>10} {1.0:>9.1f}")
    print("galaxies/s over the span from the first chunk's start to the last one's end, model loading left out; "
          "per core-s = galaxies per CPU second (what a free core does); cores used = CPU / span")
    ones = [r for s in STAGES for r in stages[s]["runs"] if r["workers"] == 1]
    print(f"pipeline, 1 worker: {total_cpu:.3f} CPU s per galaxy = {total_cpu / fwd_s:.0f}x the raw forward; "
          f"{n / sum(r['span_s'] for r in ones):.2f} galaxies/s end to end")
    for s in ("model generation", "arc-finder generation", "measurement"):
        rs = {r["workers"]: r for r in stages[s]["runs"]}
        if 1 in rs and 2 in rs:
            print(f"  {s}: 2 workers / 1 worker = {rs[1]['span_s'] / rs[2]['span_s']:.2f}x "
                  f"(chunks' CPU {rs[1]['cpu_s'] / rs[1]['span_s']:.2f} and {rs[2]['cpu_s'] / rs[2]['span_s']:.2f} "
                  "cores; worker start-up and model loading "
                  f"{(rs[2]['worker_cpu_s'] - rs[2]['cpu_s']) / 2:.1f} CPU s per worker)")
    print("\nmasks (current): " + ", ".join(f"{k} {v['asked']}+{v['not_asked']} not asked"
                                            for k, v in sorted(masks_by.items())))
    print("measurements: " + ", ".join(f"{k} {v}" for k, v in sorted(measured_by.items())))

    print(f"\n== what each stage adds, per galaxy ({n} galaxies) ==")
    print(f"{'stage':<22} {'table / folder':<40} {'rows or files':>13} {'bytes':>10}")
    for s in STAGES:
        add = stages[s]["added"]
        for table, (rows, size) in add["db"].items():
            print(f"{s:<22} {'db ' + table:<40} {rows / n:>13.2f} {size / n:>10.0f}")
        for folder, (count, size) in add["media"].items():
            print(f"{s:<22} {'media ' + folder + '/':<40} {count / n:>13.2f} {size / n:>10.0f}")
        for folder, (count, size) in stages[s].get("files", {}).items():
            print(f"{s:<22} {'files ' + folder + '/ (outside media)':<40} {count / n:>13.2f} {size / n:>10.0f}")
    for name, r in stages.items():
        if r["runs"][-1].get("failure_reasons"):
            print(f"{name} failures: {r['runs'][-1]['failure_reasons']}")


if __name__ == "__main__":
    main()
