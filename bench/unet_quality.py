"""U-Net quality on toy galaxies, and the choice of ``empty_bar_teaches_no_bar`` measured both ways.

    .venv/bin/python bench/unet_quality.py [--n 240] [--size 64] [--epochs 8] [--threads 2]

Trains the same configuration twice (asked-but-empty bar maps left out, as in the study, and taught as
"no bar"), predicts the test galaxies, and prints per run the quality report's headline figures: L1 and IoU
against the (toy) volunteers, calibration error, the model's IoU against the truth next to the crowd
consensus's with a paired bootstrap CI, and bar detection recall / precision. Toy galaxies are not the
synthetic survey: the figures show the machinery and the direction of the option, not the product's quality.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from evalcore.unet.infer import Predictor  # noqa: E402
from evalcore.unet.metrics import items_from_predictions, quality_report  # noqa: E402
from evalcore.unet.model import UNetConfig  # noqa: E402
from evalcore.unet.toy import toy_with_truth  # noqa: E402
from evalcore.unet.train import train  # noqa: E402


def headline(report: dict) -> dict:
    sp, bar = report["structures"]["spiral"], report["structures"]["bar"]
    out = {
        "spiral L1": sp["l1"]["mean"], "spiral IoU vs volunteers@0.35": sp["iou_vs_volunteers"]["0.35"]["mean"],
        "spiral ECE": sp["calibration"]["ece"], "bar L1": bar["l1"]["mean"], "bar ECE": bar["calibration"]["ece"],
    }
    for name, r in (("spiral", sp), ("bar", bar)):
        t = r.get("iou_vs_truth")
        if t:
            out[f"{name} IoU vs truth model / crowd"] = f"{t['mean_a']:.3f} / {t['mean_b']:.3f}"
            out[f"{name} difference [95% CI]"] = f"{t['difference']:+.3f} [{t['low']:+.3f}, {t['high']:+.3f}]"
    det = report["bar_detection"]
    out["bar recall / precision"] = f"{det.get('recall')} / {det.get('precision')} (n={det.get('n')})"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=240, help="toy galaxies in all (70/10/20)")
    ap.add_argument("--size", type=int, default=64, help="network input, px")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    items = toy_with_truth(args.n, 96, seed=11)
    n_tr, n_va = int(0.7 * args.n), int(0.1 * args.n)
    tr, va, te = items[:n_tr], items[n_tr:n_tr + n_va], items[n_tr + n_va:]

    def eval_items(predictor, part):
        preds = predictor.predict([s.image for s, _ in part])
        return items_from_predictions([s.key for s, _ in part], preds,
                                      [{"spiral": s.spiral, "bar": s.bar} for s, _ in part],
                                      [t for _, t in part])

    for teach in (False, True):
        cfg = UNetConfig(image_size=args.size, epochs=args.epochs, batch_size=16, empty_bar_teaches_no_bar=teach)
        t0 = time.perf_counter()
        result = train(cfg, [s for s, _ in tr], [s for s, _ in va], threads=args.threads, log=lambda m: None)
        predictor = Predictor(result.model_bytes())
        report = quality_report(eval_items(predictor, va), eval_items(predictor, te), n_boot=1000)
        print(f"\nempty_bar_teaches_no_bar={teach}: {result.epochs_run} epochs in {time.perf_counter() - t0:.0f} s "
              f"({result.images_per_s:.1f} img/s, peak {result.peak_memory_mb:.0f} MB), best val loss "
              f"{result.best_val_loss:.4f}, inference {predictor.describe()['mode']}")
        print(json.dumps(headline(report), indent=1))


if __name__ == "__main__":
    main()
