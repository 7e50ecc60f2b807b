"""``fetch_gz3d`` and ``fetch_cutouts`` against a real HTTP server on 127.0.0.1 serving files the tests write.

No test leaves the machine: every URL is the loopback server's (given by option or environment).
"""
import hashlib
import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from django.core.management import CommandError, call_command

from evalcore.formats import coords, gz3d
from evalcore.pixels import colour
from evalcore.sky import downloads
from segmentation.models import Galaxy, ImportBatch, Mask
from segmentation.selectors.images import image_rgb
from segmentation.services.galaxies import galaxy_upsert
from tests.downloads_loopback import LoopbackServer

SIZE = 40  # px, GZ3D sample files
FAST = ("--backoff", "0", "--no-progress")


@pytest.fixture
def server():
    with LoopbackServer() as s:
        yield s


def call(name, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, *FAST, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def gz3d_bytes(tmp_path, file_name, manga_id, ra, dec=2.0):
    """A small file in the release layout (evalcore.formats.gz3d.write_gz3d): 3 volunteers asked about spirals,
    two drew a square; bars not asked."""
    path = tmp_path / "src" / file_name
    spiral = [gz3d.Classification(10 + i, "2017-03-01 12:00:00 UTC", polys)
              for i, polys in enumerate([[[[5, 5], [15, 5], [15, 15], [5, 15]]]] * 2 + [[]])]
    rgb = np.random.default_rng(len(file_name)).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    gz3d.write_gz3d(path, image=rgb, header=gz3d.make_wcs_header(ra, dec, (SIZE, SIZE)),
                    metadata={"ra": ra, "dec": dec, "MANGAID": manga_id, "IAUNAME": f"J{manga_id}", "nsa_id": -1},
                    spiral=spiral, bar=[])
    return path.read_bytes()


@pytest.fixture
def release(server, tmp_path):
    """Two GZ3D files on the server: one whose first transfer is cut half-way, one that answers 500 first."""
    (tmp_path / "src").mkdir()
    files = {"gz3d_1-101_127_11.fits.gz": ("1-101", 150.0), "gz3d_1-102_127_12.fits.gz": ("1-102", 151.0)}
    bodies = {name: gz3d_bytes(tmp_path, name, *args) for name, args in files.items()}
    server.add("/v4_0_0/gz3d_1-101_127_11.fits.gz", bodies["gz3d_1-101_127_11.fits.gz"], drop_first=1)
    server.add("/v4_0_0/gz3d_1-102_127_12.fits.gz", bodies["gz3d_1-102_127_12.fits.gz"], fail_first=1)
    return server.url + "/v4_0_0/", bodies


def test_fetch_gz3d_retries_resumes_reports_404_then_imports(db, server, release, tmp_path):
    base, bodies = release
    out_dir = tmp_path / "dl"
    out, err = call("fetch_gz3d", "gz3d_1-101_127_11.fits.gz", "1-102_127_12.fits", "gz3d_1-999_19_99",
                    "--base-url", base, "--out", str(out_dir))
    assert "downloaded 1" in out and "resumed 1" in out and "retried downloads 2" in out
    assert "FAILED gz3d_1-999_19_99.fits.gz" in out and "not found on the server (HTTP 404)" in out
    assert "some files failed" in err
    for name, body in bodies.items():
        assert (out_dir / name).read_bytes() == body
    assert not list(out_dir.glob("*.part"))
    resumed = [r for _, p, r in server.log if p.endswith("1-101_127_11.fits.gz")]
    assert resumed[0] is None and resumed[1].startswith("bytes=") and resumed[1] != "bytes=0-"
    assert sorted(Galaxy.objects.values_list("manga_id", flat=True)) == ["1-101", "1-102"]
    spiral = Mask.objects.filter(producer__name="GZ3D", is_current=True, structure="spiral")
    assert sorted(m.state for m in spiral) == ["marked", "marked"] and {m.denominator for m in spiral} == {3}
    assert "import:" in out and "imported 2" in out

    requests_before = len(server.log)
    out, _ = call("fetch_gz3d", "gz3d_1-101_127_11.fits.gz", "gz3d_1-102_127_12.fits.gz", "--base-url", base,
                  "--out", str(out_dir))
    assert "already complete 2" in out and "unchanged 2" in out
    assert len(server.log) == requests_before  # complete files are not asked for again
    assert Galaxy.objects.count() == 2


def test_fetch_gz3d_by_metadata_table_and_by_manga_id(db, server, release, tmp_path):
    base, _ = release
    meta = tmp_path / "gz3d_metadata.fits"
    Table({"file_name": ["1-101_127_11.fits", "1-102_127_12.fits"], "MANGAID": ["1-101", "1-102"]}).write(meta)
    out, _ = call("fetch_gz3d", "1-102", "--metadata", str(meta), "--base-url", base, "--out", str(tmp_path / "a"),
                  "--no-import")
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["gz3d_1-102_127_12.fits.gz"]
    assert not Galaxy.objects.exists()
    out, _ = call("fetch_gz3d", "--all-from-metadata", str(meta), "--base-url", base, "--out", str(tmp_path / "b"))
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        ["gz3d_1-101_127_11.fits.gz", "gz3d_1-102_127_12.fits.gz"])
    assert Galaxy.objects.count() == 2


def test_fetch_gz3d_refuses_names_it_cannot_place(db, server, tmp_path):
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing fetched: all 1 request"):
        call_command("fetch_gz3d", "1-101", "--base-url", server.url, "--out", str(tmp_path), *FAST, stdout=out,
                     stderr=io.StringIO())
    assert "FAILED 1-101" in out.getvalue() and "give --metadata" in out.getvalue()
    assert server.log == []
    with pytest.raises(CommandError, match="give GZ3D file names"):
        call("fetch_gz3d", "--base-url", server.url)


def test_gz3d_base_url_comes_from_the_environment(db, server, release, tmp_path, monkeypatch):
    base, _ = release
    monkeypatch.setenv("EVALSITE_GZ3D_BASE_URL", base)
    out, _ = call("fetch_gz3d", "gz3d_1-102_127_12.fits.gz", "--out", str(tmp_path), "--no-import")
    assert f"fetching from {base}" in out and (tmp_path / "gz3d_1-102_127_12.fits.gz").exists()


def cutout_bytes(ra, dec, size, seed=0, zeros=False):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    wcs.wcs.cd = np.diag([-0.262 / 3600, 0.262 / 3600])
    header = wcs.to_header()
    for i, b in enumerate("grz"):
        header[f"BAND{i}"] = b
    cube = np.zeros((3, size, size), np.float32)
    if not zeros:
        cube = np.random.default_rng(seed).gamma(2.0, 0.05, size=cube.shape).astype(np.float32)
    buf = io.BytesIO()
    fits.PrimaryHDU(cube, header).writeto(buf)
    return buf.getvalue(), cube


def test_fetch_cutouts_downloads_and_imports_a_cutout_per_galaxy(db, server, tmp_path, monkeypatch):
    server.by_query = True
    size, service = 24, server.url + "/cutout.fits"
    galaxies = {
        "NGC 1": (150.0, 2.0, {"drop_first": 1}),
        "NGC/2": (151.0, -3.0, {"fail_first": 2}),
        "empty": (152.0, 4.0, {}),
    }
    cubes = {}
    for i, (name, (ra, dec, behaviour)) in enumerate(galaxies.items()):
        galaxy_upsert(name=name, defaults={"ra": ra, "dec": dec})
        body, cubes[name] = cutout_bytes(ra, dec, size, seed=i, zeros=name == "empty")
        url = downloads.cutout_url(service, ra, dec, size=size)
        server.add(url[len(server.url):], body, **behaviour)
    galaxy_upsert(name="unserved", defaults={"ra": 10.0, "dec": 10.0})
    galaxy_upsert(name="nowhere")
    monkeypatch.setenv("EVALSITE_CUTOUT_URL", service)
    out, err = call("fetch_cutouts", "--size", str(size), "--out", str(tmp_path / "cut"))
    assert "fetching 4 cutout(s)" in out  # every galaxy with a position and no cutout yet
    assert "FAILED unserved" in out and "HTTP 404" in out
    assert "FAILED empty" in out and "every pixel is zero" in out
    assert "imported 2" in out and "some files failed" in err
    for name in ("NGC 1", "NGC/2"):
        image = Galaxy.objects.get(name=name).images.get(kind="survey_cutout")
        assert (image.width, image.height, image.pixel_scale) == (size, size, pytest.approx(0.262))
        np.testing.assert_array_equal(image_rgb(image), colour.grz_to_rgb(cubes[name][:, ::-1, :]))
        ra, dec = coords.wcs_from_text(image.wcs_header).pixel_to_world_values((size - 1) / 2, (size - 1) / 2)
        g = Galaxy.objects.get(name=name)
        assert (float(ra), float(dec)) == pytest.approx((g.ra, g.dec), abs=0.3 / 3600)
    assert ImportBatch.objects.filter(kind="images").get().summary["imported"] == 2
    files = sorted(p.name for p in (tmp_path / "cut").iterdir())
    assert files == ["NGC_1__ls-dr10_grz_24px_0.262as.fits", "NGC_2__ls-dr10_grz_24px_0.262as.fits",
                     "empty__ls-dr10_grz_24px_0.262as.fits"]

    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing fetched: all 2 request"):
        call_command("fetch_cutouts", "--size", str(size), "--out", str(tmp_path / "cut"), *FAST, stdout=out,
                     stderr=io.StringIO())
    assert "fetching 2 cutout(s)" in out.getvalue()  # the two imported are done; empty and unserved are retried
    out, _ = call("fetch_cutouts", "--galaxies", "NGC 1", "--size", str(size), "--out", str(tmp_path / "cut"))
    assert "already complete 1" in out and "unchanged 1" in out


def test_fetch_cutouts_names_unknown_galaxies(db, server):
    with pytest.raises(CommandError, match="no galaxy named nobody"):
        call("fetch_cutouts", "--galaxies", "nobody", "--base-url", server.url)
    assert server.log == []


def test_fetch_gz3d_checks_the_published_checksums(db, server, release, tmp_path):
    base, bodies = release
    good = hashlib.sha1(bodies["gz3d_1-102_127_12.fits.gz"]).hexdigest()
    (tmp_path / "v4_0_0.sha1sum").write_text(
        f"{good}  gz3d_1-102_127_12.fits.gz\n{'0' * 40}  gz3d_1-101_127_11.fits.gz\n")
    out, _ = call("fetch_gz3d", "gz3d_1-101_127_11.fits.gz", "gz3d_1-102_127_12.fits.gz", "--base-url", base,
                  "--out", str(tmp_path / "dl"), "--checksums", str(tmp_path / "v4_0_0.sha1sum"), "--retries", "1",
                  "--no-import")
    assert "FAILED gz3d_1-101_127_11.fits.gz" in out and "sha1" in out and "does not match" in out
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["gz3d_1-102_127_12.fits.gz"]
