"""Model mask generation end to end vs the raw model forward pass, in one process.

    .venv/bin/python bench/generation.py [--galaxies 48] [--image-px 256] [--size 128] [--repeats 5]
        [--weights MODEL.pt] [--images 'DIR/*.png']

Sets up a throw-away SQLite database and media folder (the project's settings, migrated), stores
``--galaxies`` toy galaxy images (or the first of ``--images``, e.g. a synthetic survey's stored cutouts)
as survey cutouts and a U-Net (resnet18, untrained unless ``--train-epochs``, or a trained model file
given with ``--weights``: trained maps compress differently from an untrained model's noise) as a
ModelVersion, loads one Predictor as a generation worker would (mode "auto"),
then alternates, ``--repeats`` times:

- raw: ``Predictor.forward`` on the same images already preprocessed, in batches of the predictor's size;
- end to end: a GenerationRun through ``generation.chunk_process`` (read each PNG from storage, decode,
  preprocess, infer, map back to the full frame, quantise, encode the mask PNG, store file and row),
  after deleting the previous repeat's masks.

Prints the medians in galaxies/s, the ratio end-to-end / raw (target >= 0.8) and, per galaxy, where the
time beyond the model goes: image load, pre/postprocessing, mask encoding + storage + database.
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def setup_django(tmp: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def make_version(config, images: list[np.ndarray], train_epochs: int, weights: Path | None = None):
    """A ModelVersion holding an untrained (or briefly trained on toy galaxies) model with calibration images."""
    import hashlib

    from django.core.files.base import ContentFile

    from evalcore.unet.infer import calibration_images
    from evalcore.unet.model import build_model, model_bytes
    from segmentation.models import ModelVersion
    from segmentation.services.masks import producer_get_or_create

    if weights is not None:
        from evalcore.unet.model import load_model

        model, config, _ = load_model(weights)
    elif train_epochs:
        from evalcore.unet.toy import toy_samples
        from evalcore.unet.train import train

        samples = toy_samples(48, size=config.image_size, seed=1)
        with tempfile.TemporaryDirectory() as d:
            model = train(config.replace(epochs=train_epochs), samples[:40], samples[40:], checkpoint_dir=d).model
    else:
        model = build_model(config)
    blob = model_bytes(model, config, {"bench": True}, calibration_images(images, config))
    digest = hashlib.sha256(blob).hexdigest()
    producer = producer_get_or_create(kind="model", name="bench-unet", version=digest[:12],
                                      parameters={"config": config.to_dict()})
    version = ModelVersion(name="bench-unet", producer=producer, config=config.to_dict(), weights_sha256=digest)
    version.weights.save("bench-unet.pt", ContentFile(blob), save=False)
    version.save()
    return version, blob


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--galaxies", type=int, default=48)
    ap.add_argument("--image-px", type=int, default=256, help="stored image size, px (square)")
    ap.add_argument("--size", type=int, default=None, help="network input, px (default: UNetConfig's)")
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--train-epochs", type=int, default=0)
    ap.add_argument("--weights", type=Path, help="a trained model file (e.g. a ModelVersion's weights)")
    ap.add_argument("--images", help="glob of RGB PNG/JPEG images to use instead of toy galaxies")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="generation-bench-"))
    setup_django(tmp)
    import torch

    from evalcore.unet.data import postprocess, preprocess
    from evalcore.unet.infer import Predictor
    from evalcore.unet.model import UNetConfig
    from evalcore.unet.toy import toy_galaxy
    from segmentation.models import Mask
    from segmentation.selectors.images import image_rgb
    from segmentation.services import generation
    from segmentation.services.galaxies import galaxy_upsert, image_store
    from segmentation.services.sources.model import Source

    config = UNetConfig(encoder=args.encoder, **({"image_size": args.size} if args.size else {}))
    if args.weights:
        from evalcore.unet.model import read_bundle

        config = UNetConfig.from_dict(read_bundle(args.weights)["config"])
    rng = np.random.default_rng(0)
    files = sorted(glob.glob(args.images))[: args.galaxies] if args.images else []
    if args.images and len(files) < args.galaxies:
        raise SystemExit(f"--images matches {len(files)} files, fewer than --galaxies {args.galaxies}")
    images, stored = [], []
    for i in range(args.galaxies):
        if files:
            from PIL import Image as PILImage

            with PILImage.open(files[i]) as pil:
                rgb = np.array(pil.convert("RGB"))
        else:
            rgb = toy_galaxy(rng, args.image_px).image
        g, _ = galaxy_upsert(name=f"bench-{i}", defaults={"ra": 10 + i * 0.1, "dec": 0.0})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        images.append(rgb)
        stored.append(im)
    version, blob = make_version(config, images, args.train_epochs, args.weights)
    t0 = time.perf_counter()
    predictor = Predictor(blob, threads=args.threads, batch_size=args.batch)
    load_s = time.perf_counter() - t0
    source = Source(version, predictor)
    runtime = predictor.describe()
    print(f"{args.galaxies} galaxies of {images[0].shape[1]} px, {config.encoder} at {config.image_size} px, "
          f"mode {runtime['mode']} ({runtime['reason']}), {runtime['threads']} threads, batch {args.batch}; "
          f"predictor loaded in {load_s:.1f} s (once per worker, not timed below); data under {tmp}")

    batches = [torch.stack([preprocess(im, config) for im in images[s:s + args.batch]])
               for s in range(0, len(images), args.batch)]
    predictor.forward(batches[0])  # warm-up: first-call allocations and kernel selection

    def raw() -> float:
        t = time.perf_counter()
        for b in batches:
            predictor.forward(b)
        return args.galaxies / (time.perf_counter() - t)

    def end_to_end() -> tuple[float, dict]:
        Mask.objects.filter(producer=version.producer).delete()
        run = generation.generation_start(source="model", galaxies=[im.galaxy_id for im in stored],
                                          model_version=version, chunk_size=args.galaxies)
        chunk = run.chunks.get()
        t = time.perf_counter()
        chunk = generation.chunk_process(chunk_id=chunk.pk, source_impl=source)
        rate = args.galaxies / (time.perf_counter() - t)
        if chunk.done != args.galaxies:
            raise SystemExit(f"generation stored {chunk.done} of {args.galaxies} galaxies: {chunk.failures[:3]}")
        return rate, chunk.timings

    def parts() -> dict:
        """Per-galaxy seconds of the steps around the model, timed alone."""
        t = time.perf_counter()
        pixels = [image_rgb(im) for im in stored]
        load = time.perf_counter() - t
        t = time.perf_counter()
        pre = [preprocess(p, config) for p in pixels]
        pre_s = time.perf_counter() - t
        out = predictor.forward(torch.stack(pre[: args.batch]))
        t = time.perf_counter()
        for _ in range(len(pixels) // args.batch):
            for f, p in zip(out, pixels[: args.batch]):
                postprocess(f, p.shape, config.field_of_view)
        post_s = time.perf_counter() - t
        n = len(pixels)
        return {"load": load / n, "preprocess": pre_s / n, "postprocess": post_s / (len(pixels) // args.batch
                                                                                   * args.batch)}

    raw_rates, e2e_rates, ratios, timings, steps = [], [], [], [], []
    for rep in range(args.repeats):
        # alternate the order so slow drifts of a shared machine hit both sides alike
        if rep % 2 == 0:
            r = raw()
            e, tm = end_to_end()
        else:
            e, tm = end_to_end()
            r = raw()
        raw_rates.append(r)
        e2e_rates.append(e)
        ratios.append(e / r)
        timings.append(tm)
        steps.append(parts())
        print(f"repeat {rep + 1}: raw {r:.2f} galaxies/s, end to end {e:.2f} galaxies/s, ratio {e / r:.3f}")

    med = statistics.median
    raw_ms = 1000 / med(raw_rates)
    e2e_ms = 1000 / med(e2e_rates)
    store_ms = 1000 * med(t["store_s"] for t in timings) / args.galaxies
    generate_ms = 1000 * med(t["generate_s"] for t in timings) / args.galaxies
    load_ms = 1000 * med(s["load"] for s in steps)
    pre_ms = 1000 * med(s["preprocess"] for s in steps)
    post_ms = 1000 * med(s["postprocess"] for s in steps)
    print()
    print(f"raw forward      {med(raw_rates):7.2f} galaxies/s  ({raw_ms:6.1f} ms per galaxy)")
    print(f"end to end       {med(e2e_rates):7.2f} galaxies/s  ({e2e_ms:6.1f} ms per galaxy)")
    print(f"ratio            {med(ratios):7.3f}  (median of {args.repeats} paired repeats; target >= 0.8)")
    print("per galaxy, beyond the model's own time:")
    print(f"  image load from storage (read + PNG decode)   {load_ms:6.2f} ms")
    print(f"  preprocess (resize to network input)          {pre_ms:6.2f} ms")
    print(f"  postprocess (back to the full frame)          {post_ms:6.2f} ms")
    print(f"  mask encode + storage + database (store_s)    {store_ms:6.2f} ms")
    print(f"  everything but the store in generate() total  {generate_ms:6.2f} ms (model {raw_ms:.2f} ms of it)")
    print(f"  total overhead                                {e2e_ms - raw_ms:6.2f} ms "
          f"({100 * (e2e_ms - raw_ms) / e2e_ms:.0f}% of the end-to-end time)")


if __name__ == "__main__":
    main()
