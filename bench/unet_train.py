"""U-Net training throughput, peak memory and quality per candidate (encoder, image size), to choose defaults.

    .venv/bin/python bench/unet_train.py [--budget 90] [--threads 2] [--candidates resnet18:128,mobilenet_v2:128]

Each candidate trains in its own process (so peak memory is its own) on the same toy galaxies for the
same wall-clock budget (s), then reports training img/s, peak RSS (MB), epochs done and the best
validation L1 reached within the budget. Equal time rather than equal epochs is what matters for a
demo that must train within 10 minutes.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(encoder: str, size: int, budget: float, threads: int, queue) -> None:
    import torch

    from evalcore.unet.model import UNetConfig, count_parameters
    from evalcore.unet.toy import toy_samples
    from evalcore.unet.train import train

    torch.set_num_threads(threads)
    cfg = UNetConfig(encoder=encoder, image_size=size, epochs=200, batch_size=16, patience=200)
    start = time.perf_counter()
    result = train(cfg, toy_samples(64, 192, seed=1), toy_samples(16, 192, seed=2), threads=threads,
                   should_stop=lambda: time.perf_counter() - start > budget, log=lambda m: None)
    queue.put({"encoder": encoder, "size": size, "params_M": count_parameters(result.model) / 1e6,
               "img_s": result.images_per_s, "peak_mb": result.peak_memory_mb, "epochs": result.epochs_run,
               "val_l1": result.best_val_loss})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=90.0, help="training seconds per candidate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--candidates", default="resnet18:128,mobilenet_v2:128,resnet18:192,resnet18:96")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    for cand in args.candidates.split(","):
        encoder, size = cand.rsplit(":", 1)
        q = ctx.Queue()
        p = ctx.Process(target=run, args=(encoder, int(size), args.budget, args.threads, q))
        p.start()
        row = q.get()
        p.join()
        rows.append(row)
        print(f"{row['encoder']:>14s} {row['size']:4d}px  {row['params_M']:5.1f}M params  {row['img_s']:6.1f} img/s  "
              f"peak {row['peak_mb']:6.0f} MB  {row['epochs']:3d} epochs  best val L1 {row['val_l1']:.4f}", flush=True)
    base = rows[0]["img_s"]
    print("\nthroughput relative to the first candidate: "
          + ", ".join(f"{r['encoder']}@{r['size']} {r['img_s'] / base:.2f}x" for r in rows))


if __name__ == "__main__":
    main()
