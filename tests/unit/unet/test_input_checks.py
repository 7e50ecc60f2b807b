"""What sets an image apart from a model's training data (Django-free)."""
from __future__ import annotations

from evalcore.unet.input_checks import ImageFacts, TrainingProfile, band_set, describe_bands, differences

GRZ = "grz asinh (Legacy Survey)"


def profile() -> TrainingProfile:
    return TrainingProfile.from_facts([ImageFacts(256, 256, 0.262, GRZ), ImageFacts(192, 192, 0.3, GRZ)])


def test_band_sets_from_image_labels():
    assert band_set(GRZ) == "grz" and band_set("r asinh (0.5-99.5 %)") == "r"
    assert band_set("RGB (GZ3D subject JPEG)") == "RGB" and band_set("") == "unknown"
    assert describe_bands("r") == "r (one band, shown grey)"
    assert describe_bands("gri") == "gri colour composites"
    assert describe_bands("RGB") == "a colour picture without band data"


def test_an_image_like_the_training_data_has_no_differences():
    assert differences(ImageFacts(220, 220, 0.28, GRZ), profile()) == []


def test_each_kind_of_difference_is_named_with_the_training_range():
    p = profile()
    assert p.pixel_scale == (0.262, 0.3) and p.short_side == (192, 256) and p.aspect == (1.0, 1.0)
    kinds = dict(differences(ImageFacts(26, 40, 0.396, "r asinh (0.5-99.5 %)"), p))
    assert kinds["bands"] == "bands r (one band, shown grey): the model learned from grz colour composites"
    assert kinds["pixel scale"] == 'pixel scale 0.396"/px: the model learned at 0.262-0.3"/px'
    assert kinds["size"] == "26x40 px: the model learned from 192-256 px a side"
    assert kinds["aspect ratio"].startswith("aspect ratio 0.65 (26x40 px): the model learned from square images")
    assert dict(differences(ImageFacts(256, 256, None, GRZ), p))["pixel scale"].startswith("pixel scale unknown")
    assert dict(differences(ImageFacts(600, 600, 0.262, GRZ), p))["size"].startswith("600x600 px")


def test_profile_round_trips_and_an_empty_one_compares_nothing():
    p = profile()
    assert TrainingProfile.from_dict(p.to_dict()) == p
    assert "2 training images: grz colour composites (2)" in p.summary()
    assert differences(ImageFacts(10, 10, 9.0, "r"), TrainingProfile(n_images=0)) == []
