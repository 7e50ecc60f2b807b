"""U-Net inference speed: optimised CPU path vs plain fp32 eager, in one process, on trained weights.

    .venv/bin/python bench/unet_infer.py [--size 128] [--encoder resnet18] [--repeats 5] [--threads 2]
        [--weights MODEL.pt --image-glob 'DIR/*.png']

Trains a model briefly on toy galaxies (evalcore.unet.toy) so the precision check runs on trained
weights - or loads a trained model file (``--weights``, e.g. a ModelVersion's, with its stored
calibration images) and predicts real images (``--image-glob``, e.g. a synthetic survey's stored cutouts) -
then times, in alternating repeats: plain fp32 eager (contiguous), the default optimised path ("auto":
bf16 + channels_last where the CPU has native bf16, else int8 calibrated on validation images),
channels_last fp32 and bf16 autocast + channels_last. Prints the medians, the ratios against fp32 and the
p50/p99/max absolute fraction difference against fp32.
"""
from __future__ import annotations

import argparse
import glob
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from evalcore.unet.data import preprocess  # noqa: E402
from evalcore.unet.device import cpu_bf16_native  # noqa: E402
from evalcore.unet.infer import Predictor, fraction_difference  # noqa: E402
from evalcore.unet.model import UNetConfig, load_model, read_bundle  # noqa: E402
from evalcore.unet.toy import toy_samples  # noqa: E402
from evalcore.unet.train import train  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--size", type=int, default=128, help="network input, px")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-epochs", type=int, default=4)
    ap.add_argument("--train-images", type=int, default=64)
    ap.add_argument("--weights", type=Path, help="a trained model file instead of the brief toy training")
    ap.add_argument("--image-glob", help="with --weights: RGB PNG/JPEG images to predict (the first --images)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    result = None
    if args.weights:
        bundle = read_bundle(args.weights)
        model, cfg, _ = load_model(bundle)
        calibration = bundle.get("calibration")
        files = sorted(glob.glob(args.image_glob or ""))[: args.images]
        if not files:
            raise SystemExit("--weights needs --image-glob: the images to predict")
        images = []
        for f in files:
            with PILImage.open(f) as pil:
                images.append(np.array(pil.convert("RGB")))
        print(f"trained model {args.weights} ({cfg.encoder} @ {cfg.image_size}px), {len(images)} images "
              f"of {images[0].shape[1]} px from {args.image_glob}", flush=True)
    else:
        cfg = UNetConfig(encoder=args.encoder, image_size=args.size, epochs=args.train_epochs, batch_size=8)
        print(f"training {args.encoder} @ {args.size}px briefly on toy galaxies ...", flush=True)
        result = train(cfg, toy_samples(args.train_images, 160, seed=1), toy_samples(16, 160, seed=2),
                       threads=args.threads)
        print(f"  val L1 {result.best_val_loss:.4f} after {result.epochs_run} epochs, "
              f"{result.images_per_s:.1f} img/s training, peak RSS {result.peak_memory_mb:.0f} MB")
        model, calibration = result.model, result.calibration
        images = [s.image for s in toy_samples(args.images, 160, seed=3)]
    batch = torch.stack([preprocess(img, cfg) for img in images[: args.batch]])
    modes = {"fp32 eager": ("fp32", None), "optimised (auto)": ("auto", calibration),
             "channels_last fp32": ("auto", None), "bf16 autocast": ("reduced", None),
             "int8 (calibrated)": ("int8", calibration)}
    if cpu_bf16_native():
        del modes["channels_last fp32"]
    predictors = {name: Predictor(model, cfg, device="cpu", mode=mode, calibration=cal, batch_size=args.batch)
                  for name, (mode, cal) in modes.items()}
    print(f"CPU native bf16: {cpu_bf16_native()}; optimised path = {predictors['optimised (auto)'].describe()}")
    for p in predictors.values():  # warm-up (oneDNN primitive creation)
        p.forward(batch)

    forward = {n: [] for n in modes}
    end_to_end = {n: [] for n in modes}
    for r in range(args.repeats):
        for name, p in predictors.items():  # alternating, so load changes hit every path alike
            t = time.perf_counter()
            p.forward(batch)
            forward[name].append(batch.shape[0] / (time.perf_counter() - t))
            t = time.perf_counter()
            p.predict(images)
            end_to_end[name].append(len(images) / (time.perf_counter() - t))
        print(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(f"{n} {forward[n][-1]:.1f}" for n in modes), flush=True)

    # ratios are paired per repeat (same moment, same machine load), then the median is taken
    print(f"\n{'path':22s} {'forward img/s':>14s} {'ratio':>6s} {'predict img/s':>14s} {'ratio':>6s}  "
          "ratio range (forward)  |diff| vs fp32 p50 / p99 / max")
    for name, p in predictors.items():
        rf = [a / b for a, b in zip(forward[name], forward["fp32 eager"])]
        re = [a / b for a, b in zip(end_to_end[name], end_to_end["fp32 eager"])]
        d = fraction_difference(p, predictors["fp32 eager"], images)
        print(f"{name:22s} {statistics.median(forward[name]):14.1f} {statistics.median(rf):6.2f} "
              f"{statistics.median(end_to_end[name]):14.1f} {statistics.median(re):6.2f}  "
              f"{min(rf):5.2f} - {max(rf):5.2f}          {d['p50']:.5f} / {d['p99']:.5f} / {d['max']:.5f}")
    print(f"(medians of {args.repeats} alternating repeats, batch {args.batch}, {args.threads} threads, "
          f"{cfg.image_size}px; target: optimised >= 2.5x fp32 with p99 |diff| <= 0.02)")
    if result is not None:
        first = result.history[0]["val_loss"] if result.history else float("nan")
        print(f"trained weights: val L1 {first:.4f} after epoch 1 -> best {result.best_val_loss:.4f}; "
              f"the |diff| figures are on {len(images)} unseen toy galaxies")
    else:
        print(f"the |diff| figures are on {len(images)} images of {args.image_glob}")


if __name__ == "__main__":
    main()
