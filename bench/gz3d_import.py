"""Speed of the GZ3D import against merely reading the same files with astropy, in one process.

    .venv/bin/python bench/gz3d_import.py [--files 30] [--runs 3] [--size 525] [--jobs 2]

Writes N files in the release layout (525 px, 15 spiral and 15 bar classifications of hand-drawn-like
polygons, gzip) to a temporary folder, then per run: reads them all with astropy (open, touch every HDU's
data) and imports them all into a fresh temporary SQLite database and media folder (never the user's),
in one process and with ``--jobs`` worker processes. Prints the median rates and the ratio import / read;
the target is at least 0.5.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RELEASE_FILES = 29_800


def arm_polygon(rng, size, phase):
    """A band along a logarithmic spiral arm, ~60 vertices [x, y] px, like a volunteer's outline."""
    t = np.linspace(0.3, 2.6, 30)
    r = size * 0.06 * np.exp(0.45 * t)
    width = size * 0.02 * (1 + rng.uniform(-0.3, 0.3))
    centre = size / 2 + rng.normal(0, 2, 2)
    out = []
    for sign in (-1, 1):
        rr = (r + sign * width) if sign < 0 else (r + sign * width)[::-1]
        tt = t if sign < 0 else t[::-1]
        out += np.column_stack([centre[0] + rr * np.cos(tt + phase), centre[1] + rr * np.sin(tt + phase)]).tolist()
    return np.round(np.asarray(out) + rng.normal(0, 1.0, (len(out), 2)), 2).tolist()


def bar_polygon(rng, size):
    c, half, thick, angle = size / 2, size * 0.08, size * 0.02, rng.uniform(0, np.pi)
    corners = np.array([[-half, -thick], [half, -thick], [half, thick], [-half, thick]])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.round(corners @ rot.T + c + rng.normal(0, 1.0, (4, 2)), 2).tolist()


def write_files(folder: Path, n: int, size: int) -> list[Path]:
    from evalcore.formats import gz3d

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size]
    paths = []
    for i in range(n):
        r = np.hypot(x - size / 2, y - size / 2) / size
        light = 255 * np.exp(-r * 7) * (1 + 0.3 * np.cos(2 * np.arctan2(y - size / 2, x - size / 2) - 12 * r))
        rgb = np.stack([light, light * 0.85, light * 0.7], -1) + rng.normal(0, 4, (size, size, 3))
        image = np.clip(rgb, 0, 255).astype(np.uint8)
        spiral = [gz3d.Classification(10_000 * i + k, "2017-03-01 12:00:00 UTC",
                                      [arm_polygon(rng, size, p) for p in (0, np.pi)[: 1 + k % 2]])
                  for k in range(15)]
        bar = [gz3d.Classification(10_000 * i + 100 + k, "2017-03-01 12:00:00 UTC",
                                   [bar_polygon(rng, size)] if k % 3 else []) for k in range(15)]
        ra, dec = 150 + i * 0.01, 2.0
        meta = {"ra": ra, "dec": dec, "MANGAID": f"1-{100000 + i}", "IAUNAME": f"J{i:06d}.00+020000.0",
                "IFUDESIGNSIZE": 127.0, "MANGA_TILEID": 7443.0, "nsa_id": 1000 + i, "explorer_link": "",
                "GZ_total_classifications": 40, "GZ_bar_votes": 3, "GZ_spiral_votes": 20, "sample": "bench"}
        path = folder / f"gz3d_1-{100000 + i}_127_{5000 + i}.fits.gz"
        gz3d.write_gz3d(path, image=image, header=gz3d.make_wcs_header(ra, dec, (size, size)), metadata=meta,
                        spiral=spiral, bar=bar)
        paths.append(path)
    return paths


def read_all_with_astropy(paths):
    from astropy.io import fits

    for p in paths:
        with fits.open(p) as hdul:
            for hdu in hdul:
                hdu.data  # noqa: B018 - touching the data is the point


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=525)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes for the parallel import")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gz3d-bench-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from evalcore.formats import gz3d
    from segmentation.models import Galaxy
    from segmentation.services.imports.gz3d import import_gz3d

    call_command("migrate", verbosity=0)
    folder = tmp / "files"
    folder.mkdir()
    t0 = time.perf_counter()
    paths = write_files(folder, args.files, args.size)
    mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"wrote {len(paths)} files ({mb:.1f} MB gzip) in {time.perf_counter() - t0:.1f} s under {tmp}")

    read_rates, reader_rates, import_rates, reimport_rates, parallel_rates = [], [], [], [], []
    for run in range(args.runs):
        Galaxy.objects.all().delete()
        t0 = time.perf_counter()
        read_all_with_astropy(paths)
        read_rates.append(len(paths) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for p in paths:
            gz3d.read_gz3d(p)
        reader_rates.append(len(paths) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        result = import_gz3d([str(folder)], progress=False)
        import_rates.append(len(paths) / (time.perf_counter() - t0))
        assert result.summary.imported == len(paths), result.summary.lines()
        t0 = time.perf_counter()
        again = import_gz3d([str(folder)], progress=False)
        reimport_rates.append(len(paths) / (time.perf_counter() - t0))
        assert again.summary.unchanged == len(paths), again.summary.lines()
        Galaxy.objects.all().delete()
        t0 = time.perf_counter()
        both = import_gz3d([str(folder)], progress=False, jobs=args.jobs)
        parallel_rates.append(len(paths) / (time.perf_counter() - t0))
        assert both.summary.imported == len(paths), both.summary.lines()
        print(f"run {run + 1}: read {read_rates[-1]:.1f} files/s, gz3d reader {reader_rates[-1]:.1f}, "
              f"import {import_rates[-1]:.1f}, re-import {reimport_rates[-1]:.1f}, "
              f"import --jobs {args.jobs} {parallel_rates[-1]:.1f}")

    read, reader = statistics.median(read_rates), statistics.median(reader_rates)
    imp, reimp = statistics.median(import_rates), statistics.median(reimport_rates)
    par = statistics.median(parallel_rates)
    print(f"median of {args.runs} runs, {len(paths)} files of {args.size} px:")
    print(f"  astropy read (baseline)   {read:7.1f} files/s")
    print(f"  evalcore.formats.gz3d reader  {reader:7.1f} files/s")
    print(f"  full import (new)         {imp:7.1f} files/s")
    print(f"  re-import (unchanged)     {reimp:7.1f} files/s")
    print(f"  full import, --jobs {args.jobs}     {par:7.1f} files/s")
    print(f"RATIO import / astropy read = {imp / read:.2f} (target >= 0.5); with --jobs {args.jobs}: {par / read:.2f}")
    print(f"whole release ({RELEASE_FILES} files): {RELEASE_FILES / imp / 60:.0f} min in one process, "
          f"{RELEASE_FILES / par / 60:.0f} min with --jobs {args.jobs}")


if __name__ == "__main__":
    main()
