"""Measuring synthetic galaxies as the benchmark does: the disk orientation the import takes from the truth,
deprojection of the true bar masks with it, and the sky-cell split shared by training, generation,
measurement and comparison. Real surveys written by ``evalcore.synthetic``, real importers, real SQLite."""
import io

import pytest
from django.core.management import CommandError, call_command

from evalcore.measure.geometry import deprojected_length
from evalcore.sky.splits import SPLITS, split_for
from evalcore.synthetic import survey
from segmentation.models import Galaxy, Mask, MaskMeasurement, Producer, TrainingRun
from segmentation.selectors.galaxies import galaxy_ids_in_split
from segmentation.selectors.measurements import masks_selection
from segmentation.services import training
from segmentation.services.comparisons import compare_with_truth
from segmentation.services.imports.synthetic import import_synthetic_survey
from segmentation.services.measurements import measure_selection


def make(out, *, n, seed, size):
    survey.make_survey(survey.SurveySettings(n=n, seed=seed, size=size, out=out), workers=1)
    return out


@pytest.fixture(scope="module")
def barred_survey(tmp_path_factory):
    """24 galaxies at the benchmark's 256 px, 8 of them barred, disks seen at b/a 0.55-1."""
    return make(tmp_path_factory.mktemp("barred"), n=24, seed=5, size=256)


@pytest.fixture(scope="module")
def small_survey(tmp_path_factory):
    """6 galaxies at 64 px; by sky cell galaxies 0, 3, 5 are test and 1, 2, 4 train (by index % 10 it was 0, 1)."""
    return make(tmp_path_factory.mktemp("small"), n=6, seed=11, size=64)


def bar_results() -> list[tuple[Galaxy, str, dict]]:
    """(galaxy, image kind, stored result) of every true bar mask measured with a value."""
    found = (MaskMeasurement.objects.filter(kind="bar", measured=True, mask__producer__kind="truth")
             .select_related("mask__galaxy", "mask__image").order_by("mask__galaxy__name", "mask__image__kind"))
    return [(m.mask.galaxy, m.mask.image.kind, m.result) for m in found]


def true_factor(truth: dict) -> float:
    """Deprojected / projected true bar length: what deprojection must multiply the measured length by."""
    return truth["bar_length_deprojected_kpc"] / truth["bar_length_kpc"]


def factor_with_pa_off_by_90(truth: dict) -> float:
    """The factor a thin-disk deprojection would give with the disk position angle wrong by 90 deg."""
    return float(deprojected_length(1.0, truth["bar_position_angle_deg"], truth["axis_ratio"],
                                    truth["position_angle_deg"] + 90))


def test_import_takes_the_disk_orientation_from_the_truth_and_deprojects_true_bars_to_the_true_length(
        db, barred_survey):
    import_synthetic_survey(directory=barred_survey, progress=False)
    galaxies = list(Galaxy.objects.all())
    assert len(galaxies) == 24
    for g in galaxies:
        assert g.axis_ratio == g.truth["axis_ratio"]
        assert g.position_angle == pytest.approx(g.truth["position_angle_deg"] % 180)
    measure_selection(source="truth", structure="bar")
    results = bar_results()
    assert len(results) == 16  # the 8 barred galaxies, on the cutout and on the GZ3D subject image
    telling = 0  # bars where a position angle wrong by 90 deg would change the factor by over 10%
    for g, kind, r in results:
        where = f"{g.name} {kind}"
        assert r["disk_orientation_source"] == "galaxy", where
        assert (r["disk_axis_ratio"], r["disk_position_angle"]) == (g.axis_ratio, g.position_angle), where
        factor = r["deprojected_length_kpc"] / r["length_kpc"]
        assert factor == pytest.approx(true_factor(g.truth), rel=0.03), where
        # the truth mask marks where the bar dominates the light, a little past its nominal end
        assert r["deprojected_length_kpc"] == pytest.approx(g.truth["bar_length_deprojected_kpc"], rel=0.15), where
        telling += abs(factor_with_pa_off_by_90(g.truth) / true_factor(g.truth) - 1) > 0.1
    assert telling >= 8
    assert min(g.axis_ratio for g, _, _ in results) < 0.6  # some bars are in clearly inclined disks

    # the same masks with every disk turned by 90 deg: the measurements follow, and miss
    for g in galaxies:
        Galaxy.objects.filter(pk=g.pk).update(position_angle=(g.position_angle + 90) % 180)
    assert measure_selection(source="truth", structure="bar").updated == 48
    missed = 0
    for g, kind, r in bar_results():
        factor = r["deprojected_length_kpc"] / r["length_kpc"]
        assert factor == pytest.approx(factor_with_pa_off_by_90(g.truth), rel=0.03), f"{g.name} {kind}"
        missed += abs(factor / true_factor(g.truth) - 1) > 0.08
    assert missed == telling


def test_reimport_fills_the_disk_orientation_of_an_earlier_import_and_the_truth_wins(db, small_survey):
    import_synthetic_survey(directory=small_survey, progress=False)
    first = {g.pk: (g.axis_ratio, g.position_angle) for g in Galaxy.objects.all()}
    assert len(first) == 6 and all(ba is not None and pa is not None for ba, pa in first.values())
    # an import made before the orientation was taken from the truth, and one galaxy given a catalogue value
    Galaxy.objects.update(axis_ratio=None, position_angle=None)
    some = Galaxy.objects.order_by("pk").first()
    Galaxy.objects.filter(pk=some.pk).update(axis_ratio=0.3, position_angle=12.0)
    again = import_synthetic_survey(directory=small_survey, progress=False)
    assert again.images.updated == 6 and again.gz3d.unchanged == 6
    assert {g.pk: (g.axis_ratio, g.position_angle) for g in Galaxy.objects.all()} == first
    third = import_synthetic_survey(directory=small_survey, progress=False)
    assert third.images.unchanged == 6 and third.gz3d.unchanged == 6


def test_a_test_galaxy_is_the_same_for_training_generation_measurement_and_comparison(db, small_survey):
    import_synthetic_survey(directory=small_survey, progress=False)
    galaxies = {g.pk: g for g in Galaxy.objects.all()}
    assert all("split" not in g.truth for g in galaxies.values())  # the old index split is gone
    by_split = {s: set(galaxy_ids_in_split(s)) for s in SPLITS}
    assert {g.pk for g in galaxies.values() if split_for(g.ra, g.dec, name=g.name) == "test"} == by_split["test"]
    test_names = {galaxies[pk].name for pk in by_split["test"]}
    assert len(test_names) == 3 and len(by_split["train"]) == 3
    assert {g.manga_id for g in galaxies.values() if g.name in test_names} == {"S11-000001", "S11-000004",
                                                                              "S11-000006"}
    # training assigns (and writes into the model version's manifest) the same split
    labelled = training.labelled_galaxies(selection={"synthetic": True})
    assert len(labelled) == 6
    assert all(item.galaxy_id in by_split[item.split] for item in labelled)

    out = io.StringIO()
    call_command("measure_masks", "--split", "test", "--source", "truth", "--no-progress", stdout=out)
    assert "measuring 12 current masks" in out.getvalue()  # spiral and bar on two images per test galaxy
    measured = set(MaskMeasurement.objects.values_list("mask__galaxy__name", flat=True))
    assert measured == test_names

    report = compare_with_truth(quantity="bar_length_kpc", sources=["truth"], split="test")["truth"]
    keys = {p["key"] for p in report.points} | {e["key"] for e in report.excluded}
    assert {k.split(" [")[0] for k in keys} == test_names
    assert not any("no measurement" in e["reason"] for e in report.excluded)  # every test mask was measured
    train = compare_with_truth(quantity="bar_length_kpc", sources=["truth"], split="train")["truth"]
    assert train.n == 0  # and none of the train split
    assert {e["key"].split(" [")[0] for e in train.excluded} == {galaxies[pk].name for pk in by_split["train"]}

    out = io.StringIO()
    call_command("generate_masks", "--source", "sparcfire", "--split", "test", "--synthetic", "only", stdout=out)
    assert "3 galaxies to do" in out.getvalue()
    generated = set(Mask.objects.filter(producer__kind="sparcfire").values_list("galaxy__name", flat=True))
    assert generated == test_names


def test_unknown_split_is_refused(db):
    with pytest.raises(ValueError, match="unknown split 'testing'"):
        galaxy_ids_in_split("testing")
    with pytest.raises(ValueError, match="unknown split 'testing'"):
        masks_selection(split="testing")


def test_training_learns_from_the_true_masks_when_asked(db, small_survey, redis_conn,
                                                        django_capture_on_commit_callbacks):
    with pytest.raises(CommandError, match="no true masks to learn from"):
        call_command("train", "--labels", "truth", "--enqueue", stdout=io.StringIO())
    import_synthetic_survey(directory=small_survey, progress=False)
    truth, crowd = Producer.objects.get(kind="truth"), Producer.objects.get(kind="volunteers")
    by_truth = training.labelled_galaxies(selection={"synthetic": True, "label_producer": truth.pk})
    assert len(by_truth) == 6
    assert {m.producer_id for item in by_truth for m in item.masks.values() if m} == {truth.pk}
    by_default = training.labelled_galaxies(selection={"synthetic": True})
    assert {m.producer_id for item in by_default for m in item.masks.values() if m} == {crowd.pk}
    with pytest.raises(ValueError, match="no volunteer or truth producer 99999"):
        training.labelled_galaxies(selection={"label_producer": 99999})

    with django_capture_on_commit_callbacks(execute=True):
        call_command("train", "--labels", "truth", "--synthetic", "only", "--epochs", "1", "--enqueue",
                     stdout=io.StringIO())
    assert TrainingRun.objects.get().config["selection"]["label_producer"] == truth.pk


def test_train_leaves_out_the_augmentations_named_and_refuses_unknown_ones(db, small_survey, redis_conn,
                                                                          django_capture_on_commit_callbacks):
    import_synthetic_survey(directory=small_survey, progress=False)
    with pytest.raises(CommandError, match=r"unknown augmentation\(s\) sepia for --no-augment; known: .*colour_jitter"):
        call_command("train", "--no-augment", "colour_jitter,sepia", "--enqueue", stdout=io.StringIO())
    assert not TrainingRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("train", "--no-augment", "colour_jitter, blur", "--epochs", "1", "--enqueue",
                     stdout=io.StringIO())
    unet = TrainingRun.objects.get().config["unet"]
    assert unet["colour_jitter"] is False and unet["blur"] is False
    assert unet["channel_permute"] is True and unet["greyscale"] is True and unet["rotate"] is True
