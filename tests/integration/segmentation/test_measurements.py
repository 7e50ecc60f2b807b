"""Measurements stored per mask: ``measure_mask``, ``measure_selection``, ``manage.py measure_masks`` and
the rows for the galaxy page, on real masks stored with the services and a real SQLite database."""
import io

import numpy as np
import pytest
from astropy import units as u
from astropy.cosmology import FlatLambdaCDM
from django.core.management import CommandError, call_command

from evalcore.measure import MEASUREMENT_CODE_VERSION
from segmentation.models import MaskMeasurement
from segmentation.selectors.measurements import masks_selection, measurements_for_galaxy
from segmentation.services.galaxies import galaxy_upsert
from segmentation.services.masks import mask_store
from segmentation.services.measurements import measure_mask, measure_selection
from tests.factories.measurements import (
    PIXEL_SCALE,
    disk_image,
    galaxy_with_image,
    log_spiral_numerators,
    producer,
    store_bar,
)

ROWS, COLS = slice(30, 34), slice(12, 52)  # a 4 x 40 px bar lying east-west (position angle 90 deg)


def expected_kpc(length_px, z, H0=67.8, Om0=0.308):
    """Independent of evalcore.measure: angular size x angular-diameter distance."""
    d_a = FlatLambdaCDM(H0=H0, Om0=Om0).angular_diameter_distance(z)
    return float((d_a * (length_px * PIXEL_SCALE * u.arcsec).to_value(u.rad)).to_value(u.kpc))


def run(*args):
    out = io.StringIO()
    call_command("measure_masks", "--no-progress", *args, stdout=out)
    return out.getvalue()


def test_drawn_rectangle_gives_the_kpc_length_projected_and_deprojected(db):
    # Disk major axis north-south (PA 0) at b/a 0.5: the east-west bar lies along the minor axis, so it
    # deprojects to twice its length.
    galaxy, image = galaxy_with_image("BAR1", redshift=0.05, axis_ratio=0.5, position_angle=0.0)
    mask = store_bar(galaxy, image, producer("model"), ROWS, COLS)
    m = measure_mask(mask=mask)
    assert m.kind == "bar" and m.measured and m.code_version == MEASUREMENT_CODE_VERSION
    assert m.result["length_px"] == pytest.approx(40.0)
    assert m.length_kpc == pytest.approx(expected_kpc(40, 0.05), rel=1e-6)
    assert m.deprojected_length_kpc == pytest.approx(expected_kpc(80, 0.05), rel=1e-6)
    assert m.result["length_kpc"] == m.length_kpc and m.pitch_abs is None
    assert m.result["position_angle"] == pytest.approx(90.0)
    assert m.result["disk_orientation_source"] == "galaxy"
    assert m.result["cosmology"] == {"model": "FlatLambdaCDM", "H0": 67.8, "Om0": 0.308}
    # stored once per code version; the same inputs leave it alone
    assert measure_mask(mask=mask).pk == m.pk
    assert MaskMeasurement.objects.count() == 1


def test_cosmology_from_settings_and_new_inputs_update_the_stored_row(db, settings):
    galaxy, image = galaxy_with_image("BAR2", redshift=0.1, axis_ratio=0.5, position_angle=0.0)
    mask = store_bar(galaxy, image, producer("model"), ROWS, COLS)
    first = measure_mask(mask=mask)
    settings.EVALSITE_COSMOLOGY = {"H0": 70.0, "Om0": 0.3}
    second = measure_mask(mask=mask)
    assert second.pk == first.pk and MaskMeasurement.objects.count() == 1
    assert second.length_kpc == pytest.approx(expected_kpc(40, 0.1, 70.0, 0.3), rel=1e-6)
    assert second.length_kpc != pytest.approx(first.length_kpc, rel=1e-3)
    galaxy_upsert(name="BAR2", defaults={"redshift": 0.2})
    mask.galaxy.refresh_from_db()
    third = measure_mask(mask=mask)
    assert third.length_kpc == pytest.approx(expected_kpc(40, 0.2, 70.0, 0.3), rel=1e-6)


def test_without_catalogue_disk_orientation_the_image_fit_is_used_and_recorded(db):
    # The image's disk is elongated north-south at b/a 0.5 and the galaxy has no axis ratio.
    galaxy, image = galaxy_with_image("BAR3", rgb=disk_image(axis_ratio=0.5, major_along_rows=True))
    mask = store_bar(galaxy, image, producer("volunteers"), ROWS, COLS)
    m = measure_mask(mask=mask)
    assert m.result["disk_orientation_source"] == "image"
    assert m.result["disk_axis_ratio"] == pytest.approx(0.5, abs=0.06)
    assert min(m.result["disk_position_angle"], 180 - m.result["disk_position_angle"]) < 5
    assert any("fitted to the image" in n for n in m.result["notes"])
    assert m.deprojected_length_kpc == pytest.approx(expected_kpc(80, 0.05), rel=0.15)


def test_missing_redshift_empty_and_not_asked_masks_give_reasons_not_failures(db):
    galaxy, image = galaxy_with_image("NOZ", redshift=None, axis_ratio=0.8, position_angle=10.0)
    prod = producer("volunteers")
    bar = store_bar(galaxy, image, prod, ROWS, COLS)
    empty = mask_store(galaxy=galaxy, image=image, structure="spiral", producer=prod, state="empty",
                       numerators=np.zeros((image.height, image.width), np.int64)).mask
    other, other_image = galaxy_with_image("NOTASKED")
    mask_store(galaxy=other, image=other_image, structure="bar", producer=prod, state="not_asked")
    out = run("--source", "volunteers")
    assert "created 2, updated 0, unchanged 0, skipped 1 (not asked), failed 0" in out
    assert "results: 1 with a value, 1 without" in out
    m = MaskMeasurement.objects.get(mask=bar)
    assert m.measured and m.length_kpc is None
    assert m.result["length_arcsec"] == pytest.approx(40 * PIXEL_SCALE)
    assert "no redshift: lengths in arcsec only" in m.result["notes"]
    e = MaskMeasurement.objects.get(mask=empty)
    assert not e.measured and e.kind == "spiral" and "empty" in e.result["reason"]
    assert "unchanged 2" in run("--source", "volunteers")


def test_spiral_mask_is_measured_and_the_selection_filters(db):
    galaxy, image = galaxy_with_image("SPI", axis_ratio=1.0, position_angle=0.0, synthetic=True)
    mask_store(galaxy=galaxy, image=image, structure="spiral", producer=producer("sparcfire"),
               state="marked", numerators=log_spiral_numerators(pitch_deg=25.0, s_wise=False))
    real, real_image = galaxy_with_image("REAL", dec=3.0)
    store_bar(real, real_image, producer("sparcfire"), ROWS, COLS)
    out = run("--synthetic", "only", "--structure", "spiral")
    assert "created 1," in out
    m = MaskMeasurement.objects.get()
    assert m.kind == "spiral" and m.result["n_arms"] == 2 and m.result["chirality"] == "Z"
    assert m.pitch_abs == pytest.approx(25.0, abs=1.0)
    assert m.result["pitch_err"] is not None
    assert "created 1," in run("--synthetic", "exclude")
    assert MaskMeasurement.objects.count() == 2


def test_bad_stored_input_fails_that_mask_only_with_the_reason(db):
    galaxy, image = galaxy_with_image("BADPA", axis_ratio=0.5, position_angle=0.0)
    good = store_bar(galaxy, image, producer("model"), ROWS, COLS)
    bad_galaxy, bad_image = galaxy_with_image("BADSCALE", dec=5.0)
    bad = store_bar(bad_galaxy, bad_image, producer("model"), ROWS, COLS)
    type(bad_image).objects.filter(pk=bad_image.pk).update(pixel_scale=-1.0)
    summary = measure_selection()
    assert summary.created == 1 and len(summary.failures) == 1
    assert summary.failures[0]["mask"] == bad.pk and "pixel scale" in summary.failures[0]["reason"]
    assert MaskMeasurement.objects.filter(mask=good).exists()
    assert not MaskMeasurement.objects.filter(mask=bad).exists()


def test_unknown_choices_are_refused_clearly(db):
    with pytest.raises(CommandError, match="invalid choice"):
        run("--source", "robots")
    with pytest.raises(ValueError, match="unknown structure 'arms'"):
        masks_selection(structure="arms")


def test_rows_for_the_galaxy_page(db):
    galaxy, image = galaxy_with_image("PAGE", redshift=0.05, axis_ratio=0.5, position_angle=0.0)
    store_bar(galaxy, image, producer("model"), ROWS, COLS)
    mask_store(galaxy=galaxy, image=image, structure="spiral", producer=producer("volunteers"),
               state="marked", numerators=log_spiral_numerators(pitch_deg=20.0, axis_ratio=0.5),
               n_volunteers=5)
    mask_store(galaxy=galaxy, image=image, structure="spiral", producer=producer("model"),
               state="not_asked")
    rows = measurements_for_galaxy(galaxy)
    assert [(r["structure"], r["source"], r["measured"]) for r in rows] == [
        ("bar", "model", None), ("spiral", "volunteers", None)]
    assert all("not measured by" in r["reasons"][0] for r in rows)
    measure_selection()
    bar, spiral = measurements_for_galaxy(galaxy)
    assert bar["measured"] is True and bar["code_version"] == MEASUREMENT_CODE_VERSION
    by_key = {v["key"]: v for v in bar["values"]}
    assert by_key["length_kpc"]["value"] == pytest.approx(expected_kpc(40, 0.05), rel=1e-6)
    assert by_key["length_kpc"]["unit"] == "kpc" and by_key["length_kpc"]["err"] == 0.0
    assert by_key["length_kpc"]["text"].endswith(" kpc")
    assert by_key["deprojected_length_kpc"]["value"] == pytest.approx(expected_kpc(80, 0.05), rel=1e-6)
    assert "length_px" not in by_key  # kpc is there
    pitch = {v["key"]: v for v in spiral["values"]}["pitch_abs"]
    assert pitch["value"] == pytest.approx(20.0, abs=1.0) and pitch["unit"] == "deg" and pitch["err"] > 0
    assert {v["key"]: v["value"] for v in spiral["values"]}["chirality"] == "S"


def test_log_spiral_of_known_pitch_drawn_on_an_inclined_disk_is_recovered(db):
    # Drawn on a disk seen at b/a 0.5 (major axis north-south): measured with the galaxy's orientation the
    # true 20 deg comes back; the same pixels read as face-on would give about 28 deg.
    galaxy, image = galaxy_with_image("INCL", axis_ratio=0.5, position_angle=0.0)
    mask = mask_store(galaxy=galaxy, image=image, structure="spiral", producer=producer("model"),
                      state="marked", numerators=log_spiral_numerators(pitch_deg=20.0, axis_ratio=0.5,
                                                                                s_wise=False)).mask
    m = measure_mask(mask=mask)
    assert m.measured and m.result["n_arms"] == 2 and m.result["chirality"] == "Z"
    assert m.pitch_abs == pytest.approx(20.0, abs=1.0) and m.result["pitch"] < 0
    assert (m.result["disk_axis_ratio"], m.result["disk_position_angle"]) == (0.5, 0.0)
    galaxy_upsert(name="INCL", defaults={"axis_ratio": 1.0})
    mask.galaxy.refresh_from_db()
    face_on = measure_mask(mask=mask)
    assert face_on.pk == m.pk and face_on.pitch_abs > 25.0
