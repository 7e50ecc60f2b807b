"""make_synthetic --style and evaluate_model --style end to end: styled surveys through the real importers,
a tiny model trained on some styles, scored on a style it never saw (tiny sizes)."""
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evalcore.synthetic import styles
from segmentation.models import Galaxy, Image, ModelVersion
from segmentation.selectors.images import image_bands, image_rgb
from segmentation.services import style_evaluation, training


def make(*args):
    out = io.StringIO()
    call_command("make_synthetic", *args, "--no-progress", "--workers", "1", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_styled_surveys_import_with_their_bands_and_pixel_scales(tmp_path):
    text = make("--n", "6", "--seed", "3", "--size", "64", "--out", str(tmp_path / "mix"),
                "--style", "classic,galsim-gri,galsim-grey", "--import")
    assert "style classic,galsim-gri,galsim-grey" in text and "survey cutouts: imported 6" in text
    seen = set()
    for galaxy in Galaxy.objects.all():
        style = style_evaluation.galaxy_style(galaxy.truth)
        seen.add(style)
        cutout = galaxy.images.get(kind=Image.Kind.SURVEY_CUTOUT)
        bands = image_bands(cutout)
        want = styles.STYLES[style].bands
        assert (bands.ndim == 2) if len(want) == 1 else (bands.shape[0] == len(want)), (style, bands.shape)
        scale = galaxy.truth["images"]["survey_cutout"]["pixel_scale_arcsec"]
        assert cutout.pixel_scale == pytest.approx(scale, rel=1e-3)
        if style == "galsim-gri":
            assert "Lupton" in cutout.bands
        if style == "galsim-grey":
            rgb = image_rgb(cutout)
            assert cutout.bands.startswith("r ")
            assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    assert seen == {"classic", "galsim-gri", "galsim-grey"}


@pytest.mark.django_db
def test_an_unknown_style_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(CommandError, match="unknown style 'watercolour'"):
        make("--n", "2", "--size", "64", "--out", str(tmp_path / "x"), "--style", "watercolour")
    assert not (tmp_path / "x").exists()


@pytest.mark.django_db
def test_evaluate_model_scores_a_held_out_style_beside_its_own_test_split(tmp_path):
    make("--n", "16", "--seed", "5", "--size", "64", "--out", str(tmp_path / "train"), "--style", "galsim-grey",
         "--import")
    config = {"encoder": "resnet18", "image_size": 32, "epochs": 1, "batch_size": 4, "patience": 5, "seed": 0}
    run = training.training_start(config=config, selection={"synthetic": True})
    version = ModelVersion.objects.get(training_run=training.run_train(run_id=run.pk, threads=1))
    with pytest.raises(CommandError, match="no synthetic galaxies of style 'galsim-gri'"):
        call_command("evaluate_model", "--version", version.name, "--style", "galsim-gri", "--n-boot", "100")
    make("--n", "4", "--seed", "6", "--size", "64", "--out", str(tmp_path / "held"), "--style", "galsim-gri",
         "--import")
    out = io.StringIO()
    call_command("evaluate_model", "--version", version.name, "--style", "galsim-gri", "--n-boot", "100",
                 stdout=out)
    text = out.getvalue()
    assert "trained on galsim-grey 16" in text and "evaluated on style galsim-gri (4 galaxies it never saw)" in text
    assert "WARNING" not in text
    for row in ("spiral: model", "spiral: volunteers' consensus", "spiral: arc finder", "bar detection, held-out",
                "spiral IoU on the held-out style / own styles"):
        assert row in text, text
    report = ModelVersion.objects.get(pk=version.pk).metrics[style_evaluation.metrics_key("galsim-gri")]
    assert report["held_out"] is True and report["groups"]["held_out"]["n_galaxies"] == 4
    sources = report["groups"]["held_out"]["structures"]["spiral"]["sources"]
    assert {"model", "volunteers' consensus", "arc finder"} <= set(sources)
    # a style the version trained on is said to be no held-out evaluation
    make("--n", "3", "--seed", "7", "--size", "64", "--out", str(tmp_path / "same"), "--style", "galsim-grey",
         "--import")
    out = io.StringIO()
    call_command("evaluate_model", "--version", version.name, "--style", "galsim-grey", "--n-boot", "100",
                 "--no-arcfinder", stdout=out)
    assert "WARNING: galsim-grey is among the version's training styles" in out.getvalue()
