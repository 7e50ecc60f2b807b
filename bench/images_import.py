"""Speed of ``import_images`` against merely reading the same FITS cutouts with astropy, and of the
catalogue join, in one process.

    .venv/bin/python bench/images_import.py [--files 40] [--size 256] [--runs 3] [--rows 20000]

Writes N Legacy-Survey-like g,r,z cutouts (float32, ``--size`` px) and a catalogue to a temporary folder,
then per run: reads every file with astropy (baseline), imports them all into a fresh temporary SQLite
database and media folder (never the user's), imports them again (unchanged), and joins a catalogue of
``--rows`` rows (a tenth of them our galaxies, by position) with ``import_catalogue``. Prints medians and
the ratio import / astropy read.
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


def write_cutouts(folder: Path, n: int, size: int) -> Path:
    from astropy.io import fits
    from astropy.wcs import WCS

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    lines = ["name,ra,dec,redshift"]
    for i in range(n):
        ra, dec = 150 + i * 0.01, 2.0
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [ra, dec]
        w.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
        w.wcs.cd = np.diag([-0.262 / 3600, 0.262 / 3600])
        light = np.exp(-np.hypot(x - size / 2, y - size / 2) / (size / 10))
        cube = np.stack([light * s for s in (0.5, 1.0, 1.6)]) + rng.normal(0, 0.01, (3, size, size))
        header = w.to_header()
        for b, band in enumerate("grz"):
            header[f"BAND{b}"] = band
        fits.PrimaryHDU(cube.astype(np.float32), header).writeto(folder / f"G{i:05d}.fits")
        lines.append(f"G{i:05d},{ra},{dec},0.03")
    catalogue = folder.parent / "catalogue.csv"
    catalogue.write_text("\n".join(lines) + "\n")
    return catalogue


def read_all_with_astropy(paths):
    from astropy.io import fits

    for p in paths:
        with fits.open(p) as hdul:
            hdul[0].data  # noqa: B018 - touching the data is the point


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="images-bench-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
    import django

    django.setup()
    from astropy.table import Table
    from django.core.management import call_command

    from evalcore.sky import catalogue as cat
    from segmentation.models import Galaxy
    from segmentation.services.imports.catalogue import import_catalogue
    from segmentation.services.imports.images import import_image_folder

    call_command("migrate", verbosity=0)
    folder = tmp / "files"
    folder.mkdir()
    catalogue = write_cutouts(folder, args.files, args.size)
    paths = sorted(folder.glob("*.fits"))

    rng = np.random.default_rng(1)
    ra = rng.uniform(0, 360, args.rows)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, args.rows)))
    Table({"RA": ra, "DEC": dec, "Z": rng.uniform(0, 0.1, args.rows), "BA": rng.uniform(0.1, 1, args.rows)}
          ).write(tmp / "big.fits")
    ours = [(f"C{i}", float(ra[i]), float(dec[i])) for i in range(0, args.rows, 10)]

    read_rates, import_rates, reimport_rates, join_rates = [], [], [], []
    for run in range(args.runs):
        Galaxy.objects.all().delete()
        t0 = time.perf_counter()
        read_all_with_astropy(paths)
        read_rates.append(len(paths) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        summary = import_image_folder(directory=folder, catalogue_path=catalogue, progress=False)
        import_rates.append(len(paths) / (time.perf_counter() - t0))
        assert summary.imported == len(paths), summary.lines()
        t0 = time.perf_counter()
        summary = import_image_folder(directory=folder, catalogue_path=catalogue, progress=False)
        reimport_rates.append(len(paths) / (time.perf_counter() - t0))
        assert summary.unchanged == len(paths), summary.lines()
        Galaxy.objects.bulk_create([Galaxy(name=n, ra=r, dec=d) for n, r, d in ours])
        t0 = time.perf_counter()
        joined = import_catalogue(table=cat.read_table(tmp / "big.fits"), progress=False)
        join_rates.append(args.rows / (time.perf_counter() - t0))
        assert joined.updated == len(ours), joined.lines()
        print(f"run {run + 1}: read {read_rates[-1]:.1f} files/s, import {import_rates[-1]:.1f}, "
              f"re-import {reimport_rates[-1]:.1f}, catalogue join {join_rates[-1]:.0f} rows/s")

    read, imp = statistics.median(read_rates), statistics.median(import_rates)
    print(f"median of {args.runs} runs, {len(paths)} cutouts of {args.size} px:")
    print(f"  astropy read (baseline)  {read:8.1f} files/s")
    print(f"  import_images (new)      {imp:8.1f} files/s")
    print(f"  import_images (again)    {statistics.median(reimport_rates):8.1f} files/s")
    print(f"  import_catalogue         {statistics.median(join_rates):8.0f} rows/s "
          f"({args.rows} rows, {len(ours)} galaxies joined by position)")
    print(f"RATIO import / astropy read = {imp / read:.3f}")


if __name__ == "__main__":
    main()
