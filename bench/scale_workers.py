"""Mask generation at scale: throughput with 1 and 2 RQ workers, chunk size, and where a galaxy's time goes.

    .venv/bin/python bench/scale_workers.py [--galaxies 200] [--workers 1,2] [--chunk-sizes 16,64,256]
                                            [--repeats 3] [--postgres postgres://postgres@127.0.0.1:5432/]

Everything runs in a throw-away environment (bench/_django_env.py): a SQLite file in WAL mode, a media
folder under a temporary directory and Redis db 11 (flushed only if empty or marked by the helper).
``--galaxies`` synthetic galaxies (the classic renderer, 256 px g,r,z cutouts as RGB) are stored as survey
cutouts, with an UNTRAINED resnet18 U-Net at 128 px as a ModelVersion (speed does not depend on training).

1. In this process, one thread (the per-core figure): the model's raw forward throughput, and per galaxy
   the time of every step of a generation chunk - image load from storage (read + PNG decode),
   preprocess, forward, postprocess, quantise, encode (maskcodec), store (storage file + database rows) -
   medians of ``--repeats``; then the fixed cost of one chunk (its database bookkeeping, measured on a
   chunk whose galaxies are all done) and of building the Predictor (once per worker process).
2. Real workers: ``manage.py rqworker --worker-class rq.worker.SimpleWorker generation --burst``
   subprocesses with OMP_NUM_THREADS=1. For each worker count (chunk size 64) and each chunk size (with the
   largest worker count), the model masks are deleted and a run over all galaxies is enqueued behind one
   one-galaxy warm-up chunk per worker (so that torch import and Predictor build, once per worker, are
   reported apart). Throughput = galaxies / (last chunk finished - first chunk started).
3. Sizes: mean PNG bytes per model mask (untrained: dense maps, an upper bound), per volunteer mask
   (simulated crowd of the synthetic survey, k/N), per crowd fraction quantised to k/255 (what a trained
   model's map looks like), per binary mask (truth masks, k in {0, 1}); and, with ``--postgres``, bytes per
   row and per table on PostgreSQL (a database created and dropped here).

The machine is shared and noisy: read the ratios (2 workers / 1 worker, end to end / raw) first.
"""
from __future__ import annotations

import argparse
import json
import os
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

import numpy as np  # noqa: E402
from _django_env import release_redis_db, setup_env  # noqa: E402

med = statistics.median


# --- data ---------------------------------------------------------------------------------------------
def synthetic_galaxy(index: int, size: int, seed: int = 9):
    """(params, rgb (H, W, 3) uint8 row 0 = north, truth {spiral, bar} 0/1, crowd {structure: (counts, n)})
    for synthetic galaxy ``index``: the classic renderer and volunteer model on a Legacy-Survey-like grid."""

    from evalcore.formats import gz3d
    from evalcore.pixels import colour
    from evalcore.synthetic import renderer, survey, volunteers
    from evalcore.synthetic.population import draw_galaxy

    field = size * colour.LEGACY_SURVEY_PIXEL_SCALE
    p = draw_galaxy(np.random.default_rng([seed, index, 0]), seed=seed, index=index, field_arcsec=field)
    rng = np.random.default_rng([seed, index, 1])
    grid = renderer.Grid.from_wcs(survey.cutout_wcs(p.ra, p.dec, size), (size, size), p.ra, p.dec)
    cut = renderer.render(p, grid, survey._conditions(rng, "cutout"), rng)
    rgb = np.ascontiguousarray(colour.grz_to_rgb(cut.bands)[::-1])  # FITS rows run south first
    tasks = volunteers.ask_tasks(p, np.random.default_rng([seed, index, 3]))
    n = volunteers.DEFAULT_VOLUNTEERS
    spiral, bar = volunteers.draw_crowd(p, grid, tasks, np.random.default_rng([seed, index, 2]),
                                        crowd=volunteers.get_crowd("default"), n_volunteers=n)
    crowd = {}
    if tasks.spiral:
        crowd["spiral"] = (gz3d.volunteer_counts(spiral, (size, size))[::-1], n)
    if tasks.bar:
        crowd["bar"] = (gz3d.volunteer_counts(bar, (size, size))[::-1], n)
    truth = {"spiral": cut.spiral[::-1], "bar": cut.bar[::-1]}
    return p, rgb, truth, crowd


def store_galaxies(n: int, size: int, prefix: str = "scale", start: int = 0) -> tuple[list, list]:
    """Store ``n`` synthetic galaxies with survey cutouts. Returns (images, per galaxy (truth, crowd))."""
    from tqdm import tqdm

    from evalcore.pixels import colour
    from segmentation.services.galaxies import galaxy_upsert, image_store

    images, extras = [], []
    for i in tqdm(range(start, start + n), desc="galaxies", unit="galaxy", leave=False):
        p, rgb, truth, crowd = synthetic_galaxy(i, size)
        g, _ = galaxy_upsert(name=f"{prefix}-{i}", defaults={
            "ra": p.ra, "dec": p.dec, "redshift": p.redshift, "axis_ratio": p.axis_ratio,
            "position_angle": p.pa, "synthetic": True})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb,
                            pixel_scale=colour.LEGACY_SURVEY_PIXEL_SCALE, bands="grz")
        images.append(im)
        extras.append((truth, crowd))
    return images, extras


def make_version(config, rgbs: list[np.ndarray], name: str):
    """Producer + ModelVersion holding an untrained U-Net with int8 calibration images.

    ``training.model_version_create`` wants a TrainResult (history, best epoch) and a training manifest;
    an untrained benchmark model has neither, so the two rows are made here the same way."""
    import hashlib

    from django.core.files.base import ContentFile

    from evalcore.unet.infer import calibration_images
    from evalcore.unet.model import build_model, model_bytes
    from segmentation.models import ModelVersion, Producer
    from segmentation.services.masks import producer_get_or_create

    blob = model_bytes(build_model(config), config, {"bench": "scale_workers", "trained": False},
                       calibration_images(rgbs, config))
    digest = hashlib.sha256(blob).hexdigest()
    producer = producer_get_or_create(kind=Producer.Kind.MODEL, name=name, version=digest[:12],
                                      parameters={"config": config.to_dict()},
                                      description="untrained U-Net (bench/scale_workers.py)")
    version = ModelVersion(name=name, producer=producer, config=config.to_dict(), weights_sha256=digest)
    version.weights.save(f"{name}.pt", ContentFile(blob), save=False)
    version.save()
    return version, blob


def delete_masks(producer) -> None:
    """Delete the producer's masks and their files (so the next run regenerates every galaxy)."""
    from segmentation.models import Mask

    for m in Mask.objects.filter(producer=producer).exclude(data=""):
        m.data.delete(save=False)
    Mask.objects.filter(producer=producer).delete()


# --- 1. in process --------------------------------------------------------------------------------------
def step_split(images, predictor, version, repeats: int) -> dict:
    """Per-galaxy ms of each step of a chunk, done step by step as chunk_process does it (median of repeats)."""
    import torch
    from django.db import transaction

    from evalcore.formats import maskcodec
    from evalcore.unet.data import postprocess, preprocess
    from segmentation.selectors.images import image_rgb
    from segmentation.services.masks import mask_store
    from segmentation.services.sources.registry import STRUCTURES

    config, bs, n = predictor.config, predictor.batch_size, len(images)
    per_rep = []
    for _ in range(repeats):
        delete_masks(version.producer)
        t = dict.fromkeys(("load", "preprocess", "forward", "postprocess", "quantise", "encode", "store"), 0.0)
        for start in range(0, n, bs):
            batch = images[start:start + bs]
            c = time.perf_counter()
            pixels = [image_rgb(im) for im in batch]
            t["load"] += time.perf_counter() - c
            c = time.perf_counter()
            x = torch.stack([preprocess(p, config) for p in pixels])
            t["preprocess"] += time.perf_counter() - c
            c = time.perf_counter()
            y = predictor.forward(x)
            t["forward"] += time.perf_counter() - c
            c = time.perf_counter()
            maps = [postprocess(f, p.shape) for f, p in zip(y, pixels)]
            t["postprocess"] += time.perf_counter() - c
            for im, fractions in zip(batch, maps):
                c = time.perf_counter()
                nums = [np.rint(np.clip(fractions[k], 0, 1) * 255).astype(np.int64) for k in range(len(STRUCTURES))]
                t["quantise"] += time.perf_counter() - c
                c = time.perf_counter()
                for k in nums:
                    maskcodec.encode(k, 255)
                t["encode"] += time.perf_counter() - c
                c = time.perf_counter()
                with transaction.atomic():
                    for s, k in zip(STRUCTURES, nums):
                        mask_store(galaxy=im.galaxy, image=im, structure=s, producer=version.producer,
                                   state="marked" if k.any() else "empty", numerators=k, denominator=255,
                                   details={"model_version": version.name,
                                                     "runtime": predictor.describe()})
                t["store"] += time.perf_counter() - c
        # mask_store encodes again: the store step is its time minus the separately timed encode
        t["store"] -= t["encode"]
        per_rep.append({k: 1000 * v / n for k, v in t.items()})
    return {k: med(r[k] for r in per_rep) for k in per_rep[0]}


def raw_forward(images, predictor, repeats: int) -> float:
    """Galaxies/s of ``Predictor.forward`` alone on preprocessed batches (median of repeats)."""
    import torch

    from evalcore.unet.data import preprocess
    from segmentation.selectors.images import image_rgb

    bs = predictor.batch_size
    x = [preprocess(image_rgb(im), predictor.config) for im in images]
    batches = [torch.stack(x[s:s + bs]) for s in range(0, len(x), bs)]
    predictor.forward(batches[0])
    rates = []
    for _ in range(repeats):
        c = time.perf_counter()
        for b in batches:
            predictor.forward(b)
        rates.append(len(x) / (time.perf_counter() - c))
    return med(rates)


def in_process_chunks(images, source, version, repeats: int) -> dict:
    """End-to-end chunk_process rate (one chunk of all galaxies) and the fixed database cost of one chunk."""
    from segmentation.services import generation

    ids = [im.galaxy_id for im in images]
    rates, fixed = [], []
    for _ in range(repeats):
        delete_masks(version.producer)
        run = generation.generation_start(source="model", galaxies=ids, model_version=version,
                                          chunk_size=len(ids))
        chunk = run.chunks.get()
        c = time.perf_counter()
        done = generation.chunk_process(chunk_id=chunk.pk, source_impl=source)
        rates.append(len(ids) / (time.perf_counter() - c))
        if done.done != len(ids):
            raise SystemExit(f"in-process chunk stored {done.done} of {len(ids)}: {done.failures[:3]}")
        # the same chunk again: every galaxy is skipped, what is left is the per-chunk bookkeeping
        for size in (16, 64):
            small = run.chunks.model.objects.create(run=run, index=1000 + size + len(fixed),
                                                    galaxy_ids=ids[:size])
            c = time.perf_counter()
            generation.chunk_process(chunk_id=small.pk, source_impl=source)
            fixed.append((size, time.perf_counter() - c))
    return {"rate": med(rates), "chunk_fixed_ms": {s: 1000 * med(t for z, t in fixed if z == s) for s in (16, 64)}}


# --- 2. workers -------------------------------------------------------------------------------------------
def _children_cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def worker_run(*, env: dict, version, galaxy_ids: list[int], warmup_ids: list[int], workers: int,
               chunk_size: int) -> dict:
    """Generate masks for ``galaxy_ids`` with ``workers`` burst workers; one warm-up chunk per worker first."""
    from segmentation import jobs
    from segmentation.services import generation

    delete_masks(version.producer)
    warm = jobs.generation_launch(source="model", galaxies=warmup_ids[:workers], model_version=version,
                                  chunk_size=1, requested_by="bench warm-up")
    run = jobs.generation_launch(source="model", galaxies=galaxy_ids, model_version=version,
                                 chunk_size=chunk_size, requested_by="bench")
    t0, cpu0 = time.perf_counter(), _children_cpu_s()
    procs = [subprocess.Popen([sys.executable, "manage.py", "rqworker", "--worker-class",
                               "rq.worker.SimpleWorker", "generation", "--burst"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(workers)]
    errors = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - t0
    cpu = _children_cpu_s() - cpu0  # workers' CPU time, startup included
    if any(p.returncode for p in procs):
        raise SystemExit("a worker failed:\n" + "\n".join(e[-2000:] for e in errors))
    run.refresh_from_db()
    progress = generation.run_progress(run=run)
    if progress["done"] != len(galaxy_ids):
        reasons = {f["reason"] for c in run.chunks.all() for f in c.failures}
        print(f"  WARNING: workers stored {progress['done']} of {len(galaxy_ids)} galaxies: {sorted(reasons)[:3]}")
    chunks = list(run.chunks.values("started_at", "finished_at", "timings"))
    span = (max(c["finished_at"] for c in chunks) - min(c["started_at"] for c in chunks)).total_seconds()
    busy = sum((c["finished_at"] - c["started_at"]).total_seconds() for c in chunks)
    warm_s = [(c["finished_at"] - c["started_at"]).total_seconds() for c in warm.chunks.values(
        "started_at", "finished_at")]
    return {"workers": workers, "chunk_size": chunk_size, "chunks": len(chunks), "rate": progress["done"] / span,
            "failed": progress["failed"], "cores_used": cpu / wall,
            "span_s": span, "wall_s": wall, "warmup_s": max(warm_s),
            # time the workers were not inside a chunk: RQ dequeue/bookkeeping and the ragged end
            "idle_per_chunk_ms": 1000 * max(0.0, workers * span - busy) / len(chunks),
            "generate_s": sum(c["timings"].get("generate_s", 0) for c in chunks),
            "store_s": sum(c["timings"].get("store_s", 0) for c in chunks)}


# --- 3. sizes -----------------------------------------------------------------------------------------------
def mask_sizes(version, extras) -> dict:
    """Mean PNG bytes per encoded mask, by kind (256 px masks)."""
    from evalcore.formats import maskcodec
    from segmentation.models import Mask

    out: dict[str, list[int]] = {"model (untrained, stored)": [m.data.size for m in
                                                             Mask.objects.filter(producer=version.producer,
                                                                                 is_current=True).exclude(data="")]}
    for truth, crowd in extras:
        for _structure, (counts, n) in crowd.items():
            if counts.any():
                out.setdefault("volunteer k/N", []).append(len(maskcodec.encode(counts, n).png))
                k255 = np.rint(counts / n * 255).astype(np.int64)
                out.setdefault("crowd fraction as k/255 (trained-model proxy)", []).append(
                    len(maskcodec.encode(k255, 255).png))
        for _structure, m in truth.items():
            if m.any():
                out.setdefault("binary 0/1 (truth)", []).append(len(maskcodec.encode(m.astype(np.int64), 1).png))
    return {k: (float(np.mean(v)), len(v)) for k, v in out.items() if v}


def _probe_fill(n: int, size: int, start: int) -> None:
    """Store galaxies ``start``..``start + n``: image, model masks (2 structures as k/255 maps with the
    details a worker writes), volunteer masks where asked, and a measurement of every model mask."""
    from segmentation.models import Mask, Producer
    from segmentation.services.masks import mask_store, producer_get_or_create
    from segmentation.services.measurements import measure_mask

    images, extras = store_galaxies(n, size, prefix="probe", start=start)
    model = producer_get_or_create(kind=Producer.Kind.MODEL, name="probe-model", version="1")
    crowd_p = producer_get_or_create(kind=Producer.Kind.VOLUNTEERS, name="probe-crowd", version="1")
    runtime = {"device": "cpu", "threads": 1, "batch_size": 8, "mode": "int8", "dtype": "int8",
               "reason": "int8 passed its accuracy check", "channels_last": True,
               "image_size": 128, "int8_check": {"p99": 0.004, "max": 0.02, "images": 16}}
    for im, (_truth, crowd) in zip(images, extras):
        for structure in ("spiral", "bar"):
            counts, nv = crowd.get(structure, (np.zeros((im.height, im.width), np.int64), 15))
            k = np.rint(counts / nv * 255).astype(np.int64)
            mask_store(galaxy=im.galaxy, image=im, structure=structure, producer=model,
                       state="marked" if k.any() else "empty", numerators=k, denominator=255,
                       details={"model_version": "probe", "runtime": runtime})
            if structure in crowd:
                mask_store(galaxy=im.galaxy, image=im, structure=structure, producer=crowd_p,
                           state="marked" if counts.any() else "empty", numerators=counts,
                           denominator=nv, n_volunteers=nv)
    for mask in Mask.objects.filter(producer=model, galaxy__in=[im.galaxy_id for im in images]):
        try:
            measure_mask(mask=mask)
        except ValueError:
            pass  # an unusable mask gets no row; the per-row figure is over the rows that exist


PROBE_TABLES = ("segmentation_galaxy", "segmentation_image", "segmentation_mask", "segmentation_maskmeasurement")


def _table_sizes() -> dict:
    from django.db import connection

    out = {}
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE")  # settle the free-space and visibility maps before reading sizes
        for table in PROBE_TABLES:
            cur.execute(f"SELECT count(*) FROM {table}")
            rows = cur.fetchone()[0]
            cur.execute("SELECT pg_total_relation_size(%s), pg_relation_size(%s)", [table, table])
            total, heap = cur.fetchone()
            out[table] = (rows, total, heap)
    return out


def db_probe(n: int, size: int) -> dict:
    """Bytes per row of each table on PostgreSQL, as the growth between ``n`` and ``2 n`` stored galaxies
    (marginal: the fixed first pages of every index and table do not count)."""
    from segmentation.models import MaskMeasurement

    _probe_fill(n, size, 0)
    before = _table_sizes()
    _probe_fill(n, size, n)
    after = _table_sizes()
    out = {}
    for table in PROBE_TABLES:
        (r0, t0, h0), (r1, t1, h1) = before[table], after[table]
        out[table] = {"rows": r1, "total_bytes": t1, "bytes_per_row": (t1 - t0) / (r1 - r0) if r1 > r0 else None,
                      "heap_per_row": (h1 - h0) / (r1 - r0) if r1 > r0 else None,
                      "rows_per_galaxy": r1 / (2 * n)}
    out["measured_model_masks"] = MaskMeasurement.objects.filter(mask__producer__kind="model").count() / (4 * n)
    return out


def postgres_probe(base_url: str, n: int, size: int) -> dict:
    """Create a PostgreSQL database, run ``db_probe`` in a subprocess against it, drop it."""
    import psycopg

    name = f"evalsite_bench_scale_{uuid.uuid4().hex[:8]}"
    admin = base_url.rstrip("/") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        res = subprocess.run([sys.executable, __file__, "--db-probe", base_url.rstrip("/") + "/" + name,
                              "--galaxies", str(n)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
        if res.returncode:
            raise SystemExit(f"database probe failed:\n{res.stderr[-3000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- main ---------------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=200)
    ap.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    ap.add_argument("--chunk-sizes", default="16,64,256", help="chunk sizes tried with the largest worker count")
    ap.add_argument("--chunk-size", type=int, default=64, help="chunk size for the worker-count runs")
    ap.add_argument("--image-px", type=int, default=256)
    ap.add_argument("--size", type=int, default=128, help="network input, px")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--redis-db", type=int, default=11)
    ap.add_argument("--postgres", default="", help="server URL for the bytes-per-row probe (db created + dropped)")
    ap.add_argument("--probe-galaxies", type=int, default=160)
    ap.add_argument("--skip-workers", action="store_true")
    ap.add_argument("--db-probe", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.db_probe:
        setup_env(Path(tempfile.mkdtemp(prefix="scale-probe-")), redis_db=args.redis_db,
                  database_url=args.db_probe)
        print(json.dumps(db_probe(args.galaxies // 2, args.image_px)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    env = setup_env(tmp, redis_db=args.redis_db)
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "EVALSITE_TORCH_THREADS": "1"}
    env.update(threads)
    os.environ.update(threads)
    worker_counts = [int(w) for w in args.workers.split(",")]
    chunk_sizes = [int(c) for c in args.chunk_sizes.split(",")]

    from evalcore.unet.infer import Predictor
    from evalcore.unet.model import UNetConfig
    from segmentation.selectors.images import image_rgb
    from segmentation.services.sources.model import Source

    c = time.perf_counter()
    images, extras = store_galaxies(args.galaxies + max(worker_counts), args.image_px)
    print(f"stored {len(images)} synthetic galaxies in {time.perf_counter() - c:.0f} s under {tmp}")
    images, warmup = images[:args.galaxies], images[args.galaxies:]
    config = UNetConfig(encoder="resnet18", image_size=args.size)
    version, blob = make_version(config, [image_rgb(im) for im in images[:64]], "scale-bench-unet")

    loads = []
    for _ in range(2):
        c = time.perf_counter()
        predictor = Predictor(blob, threads=1, batch_size=args.batch)
        loads.append(time.perf_counter() - c)
    rt = predictor.describe()
    source = Source(version, predictor)
    print(f"model: {config.encoder} U-Net at {config.image_size} px, mode {rt['mode']} ({rt['reason']}), "
          f"1 thread, batch {args.batch}; Predictor build {med(loads):.1f} s (once per worker process)")

    # interleaved, one of each per repeat, so that the shared machine's slow spells hit all three alike
    reps = [(raw_forward(images, predictor, 1), step_split(images, predictor, version, 1),
             in_process_chunks(images, source, version, 1)) for _ in range(args.repeats)]
    raw = med(r[0] for r in reps)
    split = {k: med(r[1][k] for r in reps) for k in reps[0][1]}
    chunked = {"rate": med(r[2]["rate"] for r in reps),
               "chunk_fixed_ms": {s: med(r[2]["chunk_fixed_ms"][s] for r in reps) for s in (16, 64)}}
    e2e_over_steps = med(1000 / r[2]["rate"] / sum(r[1].values()) for r in reps)
    total_ms = sum(split.values())
    print(f"\n== in process, 1 thread, {args.galaxies} galaxies, median of {args.repeats} ==")
    print(f"raw forward                      {raw:7.2f} galaxies/s  ({1000 / raw:6.1f} ms per galaxy)")
    print(f"chunk_process end to end         {chunked['rate']:7.2f} galaxies/s  ({1000 / chunked['rate']:6.1f} ms "
          f"per galaxy; {chunked['rate'] / raw:.2f} of raw)")
    print("per galaxy, step by step:")
    for k, v in split.items():
        print(f"  {k:<12} {v:7.2f} ms  {100 * v / total_ms:5.1f}%")
    db_storage = split["load"] + split["store"]
    print(f"  database + storage (load + store) {db_storage:.2f} ms vs forward {split['forward']:.2f} ms "
          f"({db_storage / split['forward']:.2f}x)")
    print(f"chunk_process time / sum of the steps, same repeat: {e2e_over_steps:.2f}")
    print("fixed cost of one chunk (its database bookkeeping, all galaxies already done): "
          + ", ".join(f"{v:.0f} ms for {s} galaxies" for s, v in chunked["chunk_fixed_ms"].items()))

    rows = []
    if not args.skip_workers:
        ids, warm_ids = [im.galaxy_id for im in images], [im.galaxy_id for im in warmup]
        plan = [(k, args.chunk_size) for k in worker_counts]
        plan += [(max(worker_counts), s) for s in chunk_sizes if (max(worker_counts), s) not in plan]
        for k, s in plan:
            r = worker_run(env=env, version=version, galaxy_ids=ids, warmup_ids=warm_ids, workers=k, chunk_size=s)
            rows.append(r)
            print(f"  ran {k} worker(s), chunk {s}: {r['rate']:.2f} galaxies/s", flush=True)
        print(f"\n== RQ workers (SimpleWorker, OMP_NUM_THREADS=1), {args.galaxies} galaxies ==")
        print(f"{'workers':>7} {'chunk':>5} {'chunks':>6} {'galaxies/s':>10} {'span s':>7} {'wall s':>7} "
              f"{'warm-up s':>9} {'idle/chunk ms':>13} {'generate s':>10} {'store s':>7} {'failed':>6} "
              f"{'cores used':>10}")
        for r in rows:
            print(f"{r['workers']:>7} {r['chunk_size']:>5} {r['chunks']:>6} {r['rate']:>10.2f} {r['span_s']:>7.1f} "
                  f"{r['wall_s']:>7.1f} {r['warmup_s']:>9.1f} {r['idle_per_chunk_ms']:>13.0f} "
                  f"{r['generate_s']:>10.1f} {r['store_s']:>7.1f} {r['failed']:>6} {r['cores_used']:>10.2f}")
        one = [r for r in rows if r["workers"] == 1 and r["chunk_size"] == args.chunk_size]
        two = [r for r in rows if r["workers"] == 2 and r["chunk_size"] == args.chunk_size]
        if one and two:
            print(f"2 workers / 1 worker: {two[0]['rate'] / one[0]['rate']:.2f}x; the workers got "
                  f"{one[0]['cores_used']:.2f} and {two[0]['cores_used']:.2f} cores of CPU time (2 cores, shared)")

    print(f"\n== encoded mask sizes at {args.image_px} px (PNG) ==")
    sizes = mask_sizes(version, extras[:args.galaxies])
    for k, (mean, count) in sizes.items():
        print(f"  {k:<48} {mean / 1024:7.2f} kB mean over {count} masks")
    media_images = sum(im.file.size for im in images) / len(images)
    print(f"  survey cutout RGB PNG                            {media_images / 1024:7.2f} kB mean")
    sqlite_bytes = sum(f.stat().st_size for f in tmp.glob("bench.sqlite3*"))
    print(f"SQLite file after the runs: {sqlite_bytes / 1e6:.1f} MB (includes deleted rows' free pages)")

    if args.postgres:
        probe = postgres_probe(args.postgres, args.probe_galaxies, args.image_px)
        print(f"\n== PostgreSQL bytes per row (growth from {args.probe_galaxies // 2} to {args.probe_galaxies} "
              f"galaxies; table + indexes + TOAST) ==")
        for table in PROBE_TABLES:
            v = probe[table]
            print(f"  {table:<30} {v['rows_per_galaxy']:5.2f} rows/galaxy  {v['bytes_per_row'] or 0:7.0f} B/row "
                  f"(heap {v['heap_per_row'] or 0:.0f} B/row)")
        print(f"  share of model masks with a measurement row: {probe['measured_model_masks']:.2f}")
    release_redis_db(args.redis_db)


if __name__ == "__main__":
    main()
