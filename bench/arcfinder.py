"""Speed and agreement of the arc finder against pyarcfire, side by side on the same inputs.

    .venv/bin/python bench/arcfinder.py                 # speed: ours (median of 5) vs pyarcfire (2 runs)
    .venv/bin/python bench/arcfinder.py --compare 20    # agreement on 20 synthetic spirals (slow: pyarcfire)
    .venv/bin/python bench/arcfinder.py --compare 60 --no-pyarcfire   # ours against the truth only
    .venv/bin/python bench/arcfinder.py --fixture ../shared/fixtures/sparcfire/G.out   # vs a real run

Inputs: synthetic spiral galaxies from ``evalcore.synthetic`` rendered on a 256x256 north-up grid at the
Legacy Surveys' 0.262 arcsec/px (g,r,z cube). Both methods read the same plane: the r band, converted as
SpArcFiRe converts a FITS band (``evalcore.arcfinder.inputs``). Runs on one core (thread counts pinned to 1
before numpy loads).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalcore.arcfinder import ArcFinderParams, run_arcfinder  # noqa: E402
from evalcore.arcfinder.inputs import to_plane  # noqa: E402

SIZE = 256
PIXEL_SCALE = 0.262  # arcsec / px


def synthetic_spirals(n: int, seed: int = 7):
    """(cube (3, H, W) nmgy, truth dict) of the first ``n`` galaxies with arms of the synthetic population."""
    from evalcore.synthetic import renderer
    from evalcore.synthetic.population import draw_galaxy

    grid = renderer.Grid(shape=(SIZE, SIZE), x0=(SIZE - 1) / 2, y0=(SIZE - 1) / 2,
                         cd=np.array([[-PIXEL_SCALE, 0.0], [0.0, -PIXEL_SCALE]]))
    out, index = [], 0
    while len(out) < n:
        p = draw_galaxy(np.random.default_rng([seed, index, 0]), seed=seed, index=index,
                        field_arcsec=SIZE * PIXEL_SCALE)
        index += 1
        if p.arms.m == 0 or p.morphology == "smooth disk":
            continue
        rng = np.random.default_rng([seed, index, 1])
        cond = renderer.Conditions(psf_fwhm=1.2, sky_sigma=renderer.LEGACY, gain=4000.0)
        rendering = renderer.render(p, grid, cond, rng)
        # winding +1: going outward the arms turn counter-clockwise on the image = Z-wise
        truth = {"pitch": p.arms.pitch, "chirality": "Z" if p.arms.winding > 0 else "S",
                 "spiral": rendering.spiral.astype(bool), "inclination": p.inclination,
                 "morphology": p.morphology}
        out.append((rendering.bands, truth))
    return out


def run_pyarcfire(plane: np.ndarray):
    from pyarcfire import SpiralFinder

    logging.disable(logging.WARNING)
    result = SpiralFinder().extract(plane)
    mask = np.asarray(result.mask)
    fits = [result.get_fit(i) for i in range(result.num_clusters)]
    lengths = np.array([f.arc_length for f in fits]) if fits else np.array([])
    signs = np.array([f.chirality_sign for f in fits]) if fits else np.array([])
    vote = float(np.sum(lengths * signs)) if fits else 0.0
    pitch = float(np.degrees(abs(result.get_overall_pitch_angle()))) if fits else float("nan")
    return {"mask": mask > 0, "chirality_vote": vote, "abs_pitch": pitch, "n_arcs": result.num_clusters}


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def speed(n_ours: int, n_pyarcfire: int, params: ArcFinderParams) -> None:
    galaxies = synthetic_spirals(3)
    planes = [to_plane(cube, params)[0] for cube, _ in galaxies]
    run_arcfinder(galaxies[0][0], params)  # numba compiles (or loads its cache) once per process
    ours = []
    for cube, _ in galaxies:
        ours.append(statistics.median(timed(run_arcfinder, cube, params)[0] for _ in range(n_ours)))
    theirs = [timed(run_pyarcfire, planes[i % len(planes)])[0] for i in range(n_pyarcfire)]
    mine = statistics.median(ours)
    print(f"arc finder (ours): median {mine:.3f} s per {SIZE} px galaxy "
          f"(per galaxy: {', '.join(f'{t:.3f}' for t in ours)}; median of {n_ours} runs each)")
    print(f"pyarcfire 0.1.1:   median {statistics.median(theirs):.1f} s per galaxy "
          f"({', '.join(f'{t:.1f}' for t in theirs)})")
    print(f"speed-up: {statistics.median(theirs) / mine:.0f}x (target >= 30x; ours target <= 1 s)")


NO_PYARCFIRE = {"mask": None, "chirality_vote": 0.0, "abs_pitch": float("nan"), "n_arcs": 0}


def compare(n: int, params: ArcFinderParams, out_path: str | None, with_pyarcfire: bool = True) -> None:
    rows = []
    for i, (cube, truth) in enumerate(synthetic_spirals(n)):
        plane = to_plane(cube, params)[0]
        t_ours, ours = timed(run_arcfinder, cube, params)
        t_py, py = timed(run_pyarcfire, plane) if with_pyarcfire else (float("nan"), NO_PYARCFIRE)
        no_py = py["mask"] is None
        row = {
            "i": i, "morphology": truth["morphology"], "inclination": truth["inclination"],
            "true_pitch": truth["pitch"], "true_chirality": truth["chirality"],
            "ours_pitch": abs(ours.pitch_angle) if ours.pitch_angle is not None else None,
            "ours_chirality": ours.chirality, "py_abs_pitch": py["abs_pitch"], "py_vote": py["chirality_vote"],
            "iou_ours_py": float("nan") if no_py else iou(ours.spiral_mask, py["mask"]),
            "iou_ours_truth": iou(ours.spiral_mask, truth["spiral"]),
            "iou_py_truth": float("nan") if no_py else iou(py["mask"], truth["spiral"]), "t_ours": t_ours,
            "t_py": t_py, "n_arcs_ours": len(ours.arcs), "n_arcs_py": py["n_arcs"],
            "crop_radius": ours.geometry.crop_radius,
            "arms_in_crop": ours.geometry.share_inside(truth["spiral"], params.resize),
        }
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    summarise(rows)
    if out_path:
        Path(out_path).write_text(json.dumps(rows, indent=1))


def summarise(rows: list[dict]) -> None:
    def med(key):
        vals = [r[key] for r in rows if r[key] is not None and np.isfinite(r[key])]
        return statistics.median(vals) if vals else float("nan")

    n = len(rows)
    ours_ok = sum(r["ours_chirality"] == r["true_chirality"] for r in rows)
    # pyarcfire's chirality sign: +1 = its CLOCKWISE; its image axes may differ from ours, so report both
    py_z = [r for r in rows if r["py_vote"] != 0]
    py_agree_plus_is_z = sum((r["py_vote"] > 0) == (r["true_chirality"] == "Z") for r in py_z)
    both = sum(r["ours_chirality"] is not None and r["py_vote"] != 0 for r in rows)
    ours_vs_py = sum((r["ours_chirality"] == "Z") == (r["py_vote"] > 0) for r in rows
                     if r["ours_chirality"] is not None and r["py_vote"] != 0)
    err_ours = [abs(r["ours_pitch"] - r["true_pitch"]) for r in rows if r["ours_pitch"] is not None]
    err_py = [abs(r["py_abs_pitch"] - r["true_pitch"]) for r in rows if np.isfinite(r["py_abs_pitch"])]
    print(f"\n{n} synthetic spirals")
    print(f"arm-pixel IoU ours vs pyarcfire: median {med('iou_ours_py'):.2f}")
    print(f"arm-pixel IoU vs truth: ours {med('iou_ours_truth'):.2f}, pyarcfire {med('iou_py_truth'):.2f}")
    print(f"chirality right: ours {ours_ok}/{n}; pyarcfire {py_agree_plus_is_z}/{len(py_z)} reading its +1 as Z "
          f"({len(py_z) - py_agree_plus_is_z} reading it as S); ours = pyarcfire (+1 as Z) {ours_vs_py}/{both}")
    if err_ours:
        print(f"|pitch| error vs truth: ours median {statistics.median(err_ours):.1f} deg, "
              f"pyarcfire median {statistics.median(err_py) if err_py else float('nan'):.1f} deg")
    print(f"time per galaxy: ours median {med('t_ours'):.2f} s, pyarcfire median {med('t_py'):.1f} s")
    inside = [r["arms_in_crop"] for r in rows if np.isfinite(r["arms_in_crop"])]
    print(f"true arm pixels inside our crop: median {statistics.median(inside):.0%}, lowest {min(inside):.0%}; "
          f"{sum(v >= 0.9 for v in inside)} of {len(inside)} galaxies with at least 90%")


def fixture(run_dir: str, params: ArcFinderParams) -> None:
    """Ours on the input FITS of a real SpArcFiRe run, against SpArcFiRe's own result (input frame)."""
    from astropy.io import fits
    from scipy import ndimage

    from evalcore.arcfinder import sparcfire_output as so

    root = Path(run_dir)
    for name, folder in so.find_galaxies(root):
        inputs = list(root.parent.glob(f"*/{name}.fits"))
        if not inputs:
            print(f"{name}: no input FITS next to {root}")
            continue
        data = fits.getdata(inputs[0]).astype(np.float64)  # SpArcFiRe's frame: the array as read
        theirs = so.read_galaxy(root, name, folder)
        times = [timed(run_arcfinder, data, params)[0] for _ in range(3)]
        ours = run_arcfinder(data, params)
        a, b = ours.spiral_mask, theirs.mask
        near_a = ndimage.binary_dilation(a, np.ones((3, 3), bool))
        near_b = ndimage.binary_dilation(b, np.ones((3, 3), bool))
        print(f"{name}: {data.shape[1]}x{data.shape[0]} px input, ours {statistics.median(times):.2f} s")
        print(f"  arm pixels: ours {a.sum()}, SpArcFiRe {b.sum()}, both {np.logical_and(a, b).sum()}, "
              f"IoU {iou(a, b):.2f}; within 1 px: {np.logical_and(b, near_a).sum() / max(b.sum(), 1):.0%} of "
              f"theirs, {np.logical_and(a, near_b).sum() / max(a.sum(), 1):.0%} of ours")
        print(f"  chirality: ours {ours.chirality}, SpArcFiRe {theirs.galaxy.get('chirality_maj')} "
              f"(arc-length weighted {theirs.galaxy.get('chirality_alenWtd')})")
        print(f"  galaxy pitch (alen-weighted, dominant chirality): ours {ours.pitch_angle}, "
              f"SpArcFiRe {theirs.galaxy.get('pa_alenWtd_avg_domChiralityOnly')}")
        print(f"  ellipse: ours centre (row, col) ({ours.geometry.centre_row:.2f}, {ours.geometry.centre_col:.2f}) "
              f"axis ratio {ours.geometry.axis_ratio:.3f}, crop radius {ours.geometry.crop_radius:.1f} px; "
              f"SpArcFiRe ({theirs.galaxy.get('inputCenterR', 0) - 1:.2f}, "
              f"{theirs.galaxy.get('inputCenterC', 0) - 1:.2f}) axis ratio {theirs.galaxy.get('diskAxisRatio')}")
        print("  longest arcs (pitch deg / length px of the 256 grid):")
        for i in range(max(len(ours.arcs), len(theirs.arcs))):
            mine = ours.arcs[i] if i < len(ours.arcs) else None
            sp = theirs.arcs[i] if i < len(theirs.arcs) else None
            left = f"{mine['pitch_angle']:7.1f} / {mine['arc_length']:5.0f}" if mine else " " * 15
            right = f"{sp['pitch_angle']:7.1f} / {sp['arc_length']:5.0f}" if sp else ""
            print(f"   {i + 1:2d}  ours {left}   SpArcFiRe {right}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of ours per galaxy (median)")
    parser.add_argument("--pyarcfire-runs", type=int, default=2)
    parser.add_argument("--compare", type=int, default=0, help="compare on N synthetic spirals instead")
    parser.add_argument("--no-pyarcfire", action="store_true", help="--compare: ours against the truth only")
    parser.add_argument("--study", action="store_true", help="study parameters (no standardisation)")
    parser.add_argument("--json", help="write the comparison rows here")
    parser.add_argument("--fixture", help="a SpArcFiRe output folder (e.g. ../shared/fixtures/sparcfire/G.out)")
    args = parser.parse_args()
    from evalcore.arcfinder import STUDY_PARAMS

    params = STUDY_PARAMS if args.study else ArcFinderParams()
    if args.fixture:
        fixture(args.fixture, params)
    elif args.compare:
        compare(args.compare, params, args.json, with_pyarcfire=not args.no_pyarcfire)
    else:
        speed(args.runs, args.pyarcfire_runs, params)


if __name__ == "__main__":
    main()
