import io

import numpy as np
import pytest
from django.core.management import call_command
from gz3d_samples import DEC, RA, write_sample
from matplotlib.path import Path as MplPath

from evalcore.formats import gz3d, truthfile
from segmentation.models import Galaxy, Mask
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.imports.gz3d import import_gz3d
from segmentation.services.imports.reproject import reproject_masks
from segmentation.services.truth import truth_store

pytestmark = pytest.mark.django_db
SIZE = 101
CUTOUT = (41, 37)  # (H, W) at the Legacy Survey's 0.262"/px, centred 2" east and 1" north of the subject


def cutout_wcs():
    return gz3d.celestial_wcs(gz3d.make_wcs_header(RA + 2 / 3600 / np.cos(np.radians(DEC)), DEC + 1 / 3600,
                                                   CUTOUT, 0.262))


def add_cutout(galaxy):
    header = cutout_wcs().to_header().tostring(sep="\n")
    image, _ = image_store(galaxy=galaxy, kind="survey_cutout", rgb=np.zeros((*CUTOUT, 3), np.uint8),
                           wcs_header=header, pixel_scale=0.262)
    return image


def where_the_sky_says(polygons_per_classification):
    """Independent expectation: per cutout pixel centre, the sky position's pixel on the subject image,
    tested against each classification's polygons there (matplotlib's point-in-polygon)."""
    source = gz3d.celestial_wcs(gz3d.make_wcs_header(RA, DEC, (SIZE, SIZE)))
    ys, xs = np.mgrid[0:CUTOUT[0], 0:CUTOUT[1]]
    sx, sy = source.world_to_pixel_values(*cutout_wcs().pixel_to_world_values(xs.ravel(), ys.ravel()))
    points = np.column_stack([sx, sy])
    counts = np.zeros(xs.size, np.int64)
    for polygons in polygons_per_classification:
        inside = np.zeros(xs.size, bool)
        for poly in polygons:
            inside |= MplPath(poly).contains_points(points)
        counts += inside
    return counts.reshape(CUTOUT)


def test_volunteer_masks_land_where_the_sky_position_says(tmp_path):
    result = import_gz3d([str(write_sample(tmp_path / "a.fits", size=SIZE, bar=[]))], progress=False)
    galaxy = Galaxy.objects.get()
    cutout = add_cutout(galaxy)
    results = reproject_masks(galaxy=galaxy, target_image=cutout, batch=result.batch)
    assert sorted(r.status for r in results) == ["created", "created"]
    spiral = Mask.objects.get(image=cutout, structure="spiral", is_current=True)
    source_mask = Mask.objects.get(image__kind="gz3d_subject", structure="spiral", is_current=True)
    assert spiral.producer_id == source_mask.producer_id and spiral.denominator == 5
    assert spiral.details["reprojected_from"] == {"image": source_mask.image_id, "image_kind": "gz3d_subject",
                                                  "mask": source_mask.pk, "file": "a.fits"}
    assert spiral.details["method"] == "polygons moved by WCS and re-rasterised"
    counts = np.rint(spiral.fractions() * 5).astype(int)
    expected = where_the_sky_says([c.polygons for c in gz3d.read_gz3d(tmp_path / "a.fits").spiral])
    assert counts.sum() > 50 and counts.max() == 4
    # straight edges between moved vertices vs the exact sky mapping: at most a boundary pixel here and there
    assert np.count_nonzero(counts != expected) <= 0.02 * np.count_nonzero(expected)
    bar = Mask.objects.get(image=cutout, structure="bar", is_current=True)
    assert bar.state == Mask.State.NOT_ASKED
    assert all(r.status == "unchanged" for r in reproject_masks(galaxy=galaxy, target_image=cutout))


def test_masks_without_polygons_and_truth_are_resampled_nearest(tmp_path):
    spiral = np.zeros((SIZE, SIZE), np.uint8)
    spiral[20:40, 30:70] = 1
    path = write_sample(tmp_path / "t.fits", size=SIZE, extra_hdus=truthfile.truth_hdus(spiral, spiral, {}))
    import_gz3d([str(path)], progress=False)
    galaxy = Galaxy.objects.get()
    subject = galaxy.images.get(kind="gz3d_subject")
    galaxy.classifications.filter(structure="bar").delete()  # as after an HDU 4 fallback
    cutout = add_cutout(galaxy)
    reproject_masks(galaxy=galaxy, target_image=cutout)
    bar = Mask.objects.get(image=cutout, structure="bar", producer__kind="volunteers")
    assert bar.details["method"] == "nearest-neighbour resampling of the stored mask"
    truth = Mask.objects.get(image=cutout, structure="spiral", producer__kind="truth")
    source = gz3d.celestial_wcs(gz3d.make_wcs_header(RA, DEC, (SIZE, SIZE)))
    ys, xs = np.mgrid[0:CUTOUT[0], 0:CUTOUT[1]]
    sx, sy = source.world_to_pixel_values(*cutout_wcs().pixel_to_world_values(xs.ravel(), ys.ravel()))
    sx, sy = np.rint(sx).astype(int), np.rint(sy).astype(int)
    ok = (sx >= 0) & (sx < SIZE) & (sy >= 0) & (sy < SIZE)
    expected = np.zeros(xs.size)
    expected[ok] = spiral[sy[ok], sx[ok]]
    assert np.array_equal(truth.fractions(), expected.reshape(CUTOUT).astype(np.float32))
    assert truth.fractions().sum() > 10
    assert subject.masks.filter(producer__kind="truth").count() == 2


def test_a_truth_mask_native_to_the_target_is_kept(tmp_path):
    mark = np.zeros((SIZE, SIZE), np.uint8)
    mark[40:60, 40:60] = 1
    import_gz3d([str(write_sample(tmp_path / "t.fits", size=SIZE,
                                  extra_hdus=truthfile.truth_hdus(mark, mark, {})))], progress=False)
    galaxy = Galaxy.objects.get()
    cutout = add_cutout(galaxy)
    own = np.zeros(CUTOUT, np.uint8)
    own[0, 0] = 1
    truth_store(galaxy=galaxy, image=cutout, truth=truthfile.Truth(own, own, {}))
    reproject_masks(galaxy=galaxy, target_image=cutout)
    truth = Mask.objects.get(image=cutout, structure="bar", producer__kind="truth", is_current=True)
    assert truth.fractions().sum() == 1 and "reprojected_from" not in truth.details


def test_images_without_wcs_or_of_other_galaxies_are_refused(tmp_path):
    import_gz3d([str(write_sample(tmp_path / "a.fits", size=SIZE))], progress=False)
    galaxy = Galaxy.objects.get()
    blank, _ = image_store(galaxy=galaxy, kind="other", rgb=np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="no usable WCS"):
        reproject_masks(galaxy=galaxy, target_image=blank)
    other, _ = galaxy_upsert(name="someone else")
    with pytest.raises(ValueError, match="is not an image of someone else"):
        reproject_masks(galaxy=other, target_image=blank)


def test_command_reprojects_onto_an_existing_cutout(tmp_path):
    path = write_sample(tmp_path / "a.fits", size=SIZE)
    import_gz3d([str(path)], progress=False)
    add_cutout(Galaxy.objects.get())
    out = io.StringIO()
    call_command("import_gz3d", str(path), "--no-progress", "--reproject-onto", "survey_cutout", stdout=out)
    assert "reprojected the masks of 1 galaxies onto their survey_cutout image" in out.getvalue()
    assert Mask.objects.filter(image__kind="survey_cutout", producer__kind="volunteers").count() == 2
