"""Model generation on images unlike the training data, and masks of a model that found nothing.

Real networks throughout: tiny U-Nets whose output layer is set so that they see nothing (every fraction
~0.02) or everything (~0.98), stored as model versions with a manifest of training images, run through the
generation service, ``generate_masks``, ``measure_masks`` and ``export_masks``.
"""
from __future__ import annotations

import csv

import numpy as np
import pytest
from django.core.management import call_command

from segmentation.models import GenerationRun, Mask, MaskMeasurement
from segmentation.selectors.measurements import measurements_for_galaxy
from segmentation.services import generation
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from tests.factories.models import make_version, picture


@pytest.fixture
def survey(db):
    """Six training-like galaxies (48x48 px g,r,z at 0.262"/px) and three unlike them."""
    training = []
    for i in range(6):
        g, _ = galaxy_upsert(name=f"train{i}", defaults={"ra": 10.0 + i, "dec": 1.0})
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=picture(48, 48, i), pixel_scale=0.262,
                            bands="grz asinh (Legacy Survey)")
        training.append(im)
    unlike = {
        "sdss r": dict(rgb=picture(48, 48, 10), pixel_scale=0.396, bands="r asinh (0.5-99.5 %)"),
        "tiny": dict(rgb=picture(16, 16, 11), pixel_scale=0.262, bands="grz asinh (Legacy Survey)"),
        "wide": dict(rgb=picture(40, 72, 12), pixel_scale=0.262, bands="grz asinh (Legacy Survey)"),
    }
    for i, (name, kw) in enumerate(unlike.items()):
        g, _ = galaxy_upsert(name=name, defaults={"ra": 30.0 + i, "dec": 2.0})
        image_store(galaxy=g, kind="survey_cutout", **kw)
    return training


def run_here(version, names) -> GenerationRun:
    from segmentation.models import Galaxy

    run = generation.generation_start(source="model", galaxies=Galaxy.objects.filter(name__in=names),
                                      model_version=version)
    for chunk in run.chunks.all():
        generation.chunk_process(chunk_id=chunk.pk)
    run.refresh_from_db()
    return run


def test_a_run_records_how_each_image_differs_from_the_training_data(survey):
    version = make_version("eager", 4.0, survey)
    run = run_here(version, ["train0", "sdss r", "tiny", "wide"])
    checks = run.input_checks
    assert (checks["checked"], checks["differing"]) == (4, 3)
    assert checks["counts"] == {"bands": 1, "pixel scale": 1, "size": 1, "aspect ratio": 1}
    by_galaxy = {e["galaxy"]: e["differences"] for e in checks["images"]}
    assert set(by_galaxy) == {"sdss r", "tiny", "wide"}
    assert by_galaxy["sdss r"][0].startswith("bands r (one band, shown grey): the model learned from grz")
    assert '0.396"/px' in by_galaxy["sdss r"][1]
    assert by_galaxy["tiny"] == ["16x16 px: the model learned from 48 px a side"]
    assert "aspect ratio 1.80 (72x40 px)" in by_galaxy["wide"][0] and "padded" in by_galaxy["wide"][0]
    assert "6 training images" in checks["training"]
    # the wide image's masks come back on its own 40x72 px frame
    wide = Mask.objects.get(galaxy__name="wide", producer=version.producer, structure="spiral")
    assert wide.fractions().shape == (40, 72)


def test_generate_masks_prints_the_input_warnings(survey, capsys):
    version = make_version("eager", 4.0, survey)
    call_command("generate_masks", "--source", "model", "--model-version", version.name, "--allow-ungated",
                 "--names", "train1", "sdss r", "wide")
    out = capsys.readouterr().out
    assert "WARNING: 2 of 3 images differ from what eager learned from (6 training images" in out
    assert "  bands: 1 image\n" in out and "  aspect ratio: 1 image\n" in out
    assert "  sdss r: bands r (one band, shown grey)" in out
    assert "train1" not in out.split("WARNING")[1]


def test_a_model_that_finds_nothing_stores_asked_nothing_marked_and_keeps_its_fractions(survey, tmp_path):
    quiet = make_version("quiet", -4.0, survey)
    run_here(quiet, ["train0", "train1"])
    masks = Mask.objects.filter(producer=quiet.producer, is_current=True)
    assert masks.count() == 4
    for mask in masks:
        assert mask.state == Mask.State.EMPTY
        f = mask.fractions()
        assert 0 < f.max() < 0.05  # what the model saw is kept
        assert mask.details["marked_threshold"] == 0.5 and "no evaluation" in mask.details["threshold_from"]
        assert mask.details["peak_fraction"] == pytest.approx(f.max())
    call_command("measure_masks", "--source", "model", "--no-progress")
    for m in MaskMeasurement.objects.filter(mask__producer=quiet.producer):
        assert not m.measured and m.length_kpc is None
        assert m.result["reason"].startswith(f"asked, nothing marked: the {m.kind} map peaks at 0.0")
        assert "below its source's threshold 0.5" in m.result["reason"]
    call_command("export_masks", "--out", str(tmp_path), "--source", "model", "--names", "train0")
    with (tmp_path / "measurements.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    bar = next(r for r in rows if r["structure"] == "bar")
    assert bar["mask_state"] == "empty" and bar["measured"] == "False" and "nothing marked" in bar["reason"]
    assert bar["length_kpc"] == "" and bar["profile_length_px"] == ""


def test_the_version_s_own_threshold_decides_when_it_has_one(survey):
    evaluated = {"evaluation": {"structures": {
        "spiral": {"iou_vs_volunteer_consensus": {"model_threshold_from_val": 0.01}},
        "bar": {"iou_vs_volunteer_consensus": {"model_threshold_from_val": 0.3}}}}}
    quiet = make_version("quiet-evaluated", -4.0, survey, metrics=evaluated)
    run_here(quiet, ["train0"])
    spiral = Mask.objects.get(producer=quiet.producer, structure="spiral")
    bar = Mask.objects.get(producer=quiet.producer, structure="bar")
    assert spiral.state == Mask.State.MARKED and spiral.details["marked_threshold"] == 0.01
    assert bar.state == Mask.State.EMPTY and "validation" in bar.details["threshold_from"]


def test_an_empty_mask_keeps_fractions_only_below_its_sources_threshold(survey):
    image = survey[0]
    producer = producer_get_or_create(kind="model", name="some model", version="1")
    faint = np.full((48, 48), 10, np.int64)  # 10/255 = 0.039
    kept = mask_store(galaxy=image.galaxy, image=image, structure="bar", producer=producer,
                      state="empty", numerators=faint, denominator=255,
                      details={"marked_threshold": 0.2})
    assert kept.mask.state == Mask.State.EMPTY and kept.mask.fractions().max() == pytest.approx(10 / 255)
    with pytest.raises(ValueError, match="below its source's threshold 0.02"):
        mask_store(galaxy=image.galaxy, image=image, structure="spiral", producer=producer,
                   state="empty", numerators=faint, denominator=255, details={"marked_threshold": 0.02})
    with pytest.raises(ValueError, match="no marked pixel"):
        mask_store(galaxy=image.galaxy, image=image, structure="spiral", producer=producer,
                   state="empty", numerators=faint, denominator=255)


def test_no_bar_length_of_any_kind_without_a_measured_bar_in_catalogue_comparison_and_page(db, tmp_path):
    """A crowd's bar map in two separate pieces: the recipe finds no bar, so neither it nor the half-maximum
    profile gives a length anywhere, and each place says why."""
    from tests.factories.measurements import galaxy_with_image, producer

    truth = {"bar_length_kpc": 5.0, "bar_length_deprojected_kpc": 5.0}
    galaxy, image = galaxy_with_image("TWO PIECES", synthetic=True, truth=truth)
    crowd = producer("volunteers")
    pieces = np.zeros((image.height, image.width), np.int64)
    pieces[20:26, 10:40] = 3
    pieces[60:66, 15:35] = 3
    mask_store(galaxy=galaxy, image=image, structure="bar", producer=crowd, state="marked",
               numerators=pieces, denominator=3)
    call_command("measure_masks", "--no-progress")
    m = MaskMeasurement.objects.get(mask__producer=crowd, kind="bar")
    assert not m.measured and "2 separate regions" in m.result["reason"]
    assert m.result["profile_length_px"] is None and m.result["profile_reason"].startswith("no bar measured: 2 sep")
    # catalogue
    call_command("export_masks", "--out", str(tmp_path / "export"))
    with (tmp_path / "export" / "measurements.csv").open() as fh:
        row = next(r for r in csv.DictReader(fh) if r["structure"] == "bar")
    assert row["measured"] == "False" and "2 separate regions" in row["reason"]
    assert all(row[c] == "" for c in ("length_px", "length_kpc", "profile_length_px", "profile_length_kpc"))
    # comparison with the truth, by the recipe and by the profile: left out, with the reason
    call_command("compare_measurements", "--truth", "--source", "volunteers", "--out", str(tmp_path / "cmp"))
    for stem in ("truth_bar_length_kpc", "truth_bar_profile_length_kpc"):
        with (tmp_path / "cmp" / f"{stem}_excluded.csv").open() as fh:
            reasons = [r["reason"] for r in csv.DictReader(fh)]
        assert reasons and all("2 separate regions" in r for r in reasons), stem
    # the galaxy page
    rows = measurements_for_galaxy(galaxy)
    bar = next(r for r in rows if r["structure"] == "bar")
    assert bar["measured"] is False and bar["values"] == [] and "2 separate regions" in bar["reasons"][0]
