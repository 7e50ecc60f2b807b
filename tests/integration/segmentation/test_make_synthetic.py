"""make_synthetic end to end: files, the real importers, bad arguments, the gallery."""
import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from evalcore.formats import gz3d
from evalcore.synthetic import gallery
from segmentation.models import Galaxy, ImportBatch, Mask, VolunteerClassification


def run(*args):
    out = io.StringIO()
    call_command("make_synthetic", *args, "--no-progress", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_survey_round_trips_through_the_importers(tmp_path):
    out_dir = tmp_path / "survey"
    text = run("--n", "4", "--seed", "11", "--size", "64", "--out", str(out_dir), "--workers", "1", "--import")
    assert "spiral: mean IoU" in text and "survey cutouts: imported 4" in text
    assert Galaxy.objects.count() == 4
    assert set(Galaxy.objects.values_list("synthetic", flat=True)) == {True}
    assert ImportBatch.objects.filter(kind=ImportBatch.Kind.SYNTHETIC).count() == 1
    checked_tasks = 0
    for path in sorted((out_dir / "gz3d").glob("*.fits.gz")):
        f = gz3d.read_gz3d(path)
        galaxy = Galaxy.objects.get(manga_id=f.metadata["MANGAID"])
        assert galaxy.name == f.metadata["IAUNAME"]
        assert galaxy.truth == f.truth.params
        assert {i.kind for i in galaxy.images.all()} == {"gz3d_subject", "survey_cutout"}
        subject = galaxy.images.get(kind="gz3d_subject")
        for structure, classifications in (("spiral", f.spiral), ("bar", f.bar)):
            mask = Mask.objects.get(galaxy=galaxy, image=subject, structure=structure, is_current=True,
                                    producer__kind="volunteers")
            assert mask.producer.version == "synthetic-default-v1"
            if not classifications:
                assert mask.state == Mask.State.NOT_ASKED
                continue
            checked_tasks += 1
            # fractions = union of each volunteer's polygons, summed, over the number of volunteers
            expected = gz3d.volunteer_counts(classifications, f.shape) / 15
            assert mask.denominator == 15
            assert np.array_equal(mask.fractions(), expected.astype(np.float32))
            assert VolunteerClassification.objects.filter(galaxy=galaxy, structure=structure).count() == 15
            truth = Mask.objects.get(galaxy=galaxy, image=subject, structure=structure, is_current=True,
                                     producer__kind="truth")
            assert np.array_equal(truth.fractions() > 0, getattr(f.truth, structure) > 0)
        cutout = galaxy.images.get(kind="survey_cutout")
        assert cutout.masks.filter(producer__kind="volunteers", is_current=True).count() == 2
        assert cutout.masks.filter(producer__kind="truth", is_current=True).count() == 2
    assert checked_tasks >= 4
    # a second import changes nothing
    from segmentation.services.imports.synthetic import import_synthetic_survey

    again = import_synthetic_survey(directory=out_dir, progress=False)
    assert again.images.unchanged == 4 and again.gz3d.unchanged == 4 and Galaxy.objects.count() == 4


@pytest.mark.parametrize("args, message", [
    (["--n", "0"], "--n must be a positive number of galaxies, got 0"),
    (["--n", "-5"], "--n must be a positive number of galaxies, got -5"),
    (["--n", "2", "--size", "16"], "--size must be 64..2048 px"),
    (["--n", "2", "--volunteers", "0"], "--volunteers must be 1..60, got 0"),
])
def test_bad_arguments_give_clear_errors(tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args, "--out", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_unwritable_output_folder_gives_a_clear_error(tmp_path):
    (tmp_path / "plain-file").write_text("not a folder")
    with pytest.raises(CommandError, match="is a file, not a folder"):
        run("--n", "2", "--out", str(tmp_path / "plain-file" / "survey"))
    if not Path("/proc/self").exists():
        pytest.skip("no /proc here to try a folder that cannot be created")
    with pytest.raises(CommandError, match="--out /proc/evalsite-survey"):
        run("--n", "2", "--out", "/proc/evalsite-survey")


@pytest.mark.slow
def test_gallery_png_of_sixteen_galaxies(tmp_path):
    out_dir = tmp_path / "survey"
    png = tmp_path / "gallery.png"
    text = run("--n", "16", "--seed", "3", "--size", "64", "--out", str(out_dir), "--gallery", str(png))
    assert f"gallery saved to {png}" in text
    with PILImage.open(png) as img:
        assert img.format == "PNG" and img.width > 800 and img.height > 1000
    items = gallery.items_from_survey(out_dir)
    assert len(items) == 16
    assert all(item.truth_spiral is not None and item.image.shape == (64, 64, 3) for item in items)
    assert any(item.spiral_fraction is not None and item.spiral_fraction.max() > 0 for item in items)
    with pytest.raises(CommandError, match="--gallery must name a .png file"):
        run("--n", "1", "--out", str(out_dir), "--gallery", str(tmp_path / "g.jpg"))
