"""Evaluation of a model version on its test split, and the staff page comparing versions (tiny sizes)."""

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse

from segmentation.models import ModelVersion
from segmentation.selectors.model_versions import model_version_splits, version_manifest
from segmentation.services.masks import mask_store, producer_get_or_create
from segmentation.services.model_versions import evaluate_version, sources_vs_truth
from tests.factories.quality import SIZE, galaxy_maps, quality_survey, train_version


@pytest.fixture
def survey(db):
    return quality_survey()


@pytest.mark.slow
def test_evaluation_reports_every_quantity_with_intervals_on_the_manifest_test_split(survey, capsys):
    version = train_version(epochs=2)
    splits = model_version_splits(version)
    n_test = sum(1 for s in splits.values() if s == "test")

    report = evaluate_version(version=version, n_boot=300)

    assert report["split"] == "test" and report["n_test"] == n_test
    assert report["n_val"] == sum(1 for s in splits.values() if s == "val")
    assert report["predictions"]["computed"] == n_test + report["n_val"] and report["n_skipped"] == 0
    for st in ("spiral", "bar"):
        r = report["structures"][st]
        assert r["n_test_asked"] == n_test
        l1 = r["l1"]
        assert 0.0 < l1["mean"] < 1.0 and l1["low"] <= l1["mean"] <= l1["high"] and l1["n"] == n_test
        for ci in r["iou_vs_volunteers"].values():
            assert ci["mean"] is None or 0.0 <= ci["low"] <= ci["mean"] <= ci["high"] <= 1.0
        cal = r["calibration"]
        assert sum(cal["count"]) == n_test * SIZE * SIZE  # pooled pixels of the full frames
        assert 0.0 <= cal["ece"] <= 1.0
    truth = report["structures"]["spiral"]["iou_vs_truth"]
    assert truth["a"] == "model" and truth["b"] == "crowd consensus" and truth["n"] == n_test
    assert truth["low"] <= truth["difference"] <= truth["high"]
    assert abs(truth["difference"] - (truth["mean_a"] - truth["mean_b"])) < 1e-9
    # the toy crowd sees the arms well: its consensus overlaps the truth far better than chance
    assert truth["mean_b"] > 0.5
    bar = report["bar_detection"]
    barred_test = sum(1 for n, s in splits_by_name(version).items() if s == "test" and int(n[1:]) % 2 == 0)
    if barred_test:  # labels come from the truth where known
        assert bar["tp"] + bar["fn"] == barred_test and bar["tp"] + bar["fp"] + bar["fn"] + bar["tn"] == n_test
    else:
        assert bar["note"] == "no barred galaxies with labels in the test split"

    version.refresh_from_db()
    assert version.metrics["evaluation"]["n_test"] == n_test and "history" in version.metrics  # kept, not replaced

    call_command("evaluate_model", "--version", version.name, "--n-boot", "200", "--calibration")
    out = capsys.readouterr().out
    assert "L1 vs volunteers" in out and "IoU vs truth: crowd consensus" in out and "reliability curve, bar" in out
    assert "detection recall" in out or "no barred galaxies" in out
    assert f"{report['structures']['spiral']['l1']['mean']:.4f}" in out  # the mean does not depend on the draws


def splits_by_name(version):
    return {g["name"]: g["split"] for g in version_manifest(version)["galaxies"]}


@pytest.mark.slow
def test_stored_masks_of_the_version_are_reused_and_changed_labels_are_reported(survey):
    from segmentation.services import generation

    version = train_version(epochs=1)
    from segmentation.models import Galaxy

    run = generation.generation_start(source="model", galaxies=list(Galaxy.objects.values_list("pk", flat=True)),
                                      model_version=version, chunk_size=50)
    for chunk in run.chunks.all():
        generation.chunk_process(chunk_id=chunk.pk)
    first = evaluate_version(version=version, n_boot=200)
    assert first["predictions"] == {"stored_masks": first["n_test"] + first["n_val"], "computed": 0, "runtime": None}

    # new volunteer labels for one test galaxy: the version learned from the old ones, still stored
    name = next(n for n, s in splits_by_name(version).items() if s == "test")
    from segmentation.models import Image, Mask

    image = Image.objects.get(galaxy__name=name)
    mask_store(galaxy=image.galaxy, image=image, structure="spiral", producer=survey, state="marked",
               numerators=np.ones((SIZE, SIZE), np.int64), denominator=15)
    again = evaluate_version(version=version, n_boot=200)
    assert again["n_test"] == first["n_test"]
    assert again["structures"]["spiral"]["l1"] == first["structures"]["spiral"]["l1"]

    # and when the labels it learned from are gone, the galaxy is left out with the reason
    old = Mask.objects.filter(galaxy__name=name, producer=survey, structure="spiral", is_current=False)
    Mask.objects.filter(pk__in=[m.pk for m in old]).delete()
    third = evaluate_version(version=version, n_boot=200)
    assert third["n_test"] == first["n_test"] - 1 and third["n_skipped"] == 1
    assert third["skipped"][0]["galaxy"] == name and "not stored here" in third["skipped"][0]["reason"]


def test_evaluating_a_version_without_manifest_or_unknown_split_is_refused(db):
    from django.core.files.base import ContentFile

    producer = producer_get_or_create(kind="model", name="bare", version="1")
    version = ModelVersion(name="bare", producer=producer, config={}, weights_sha256="0" * 64)
    version.weights.save("bare.pt", ContentFile(b"x"), save=False)
    version.save()
    with pytest.raises(ValueError, match="no training manifest"):
        evaluate_version(version=version)
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        evaluate_version(version=version, split="holdout")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no model version 'nope'"):
        call_command("evaluate_model", "--version", "nope")


@pytest.mark.slow
def test_comparison_page_shows_versions_side_by_side_for_staff_only(survey, client):
    a = train_version(epochs=1)
    b = train_version(epochs=2)
    evaluate_version(version=a, n_boot=200)
    # training evaluates every new version for the quality gate; b stands for one evaluated nowhere
    b.metrics = {k: v for k, v in b.metrics.items() if k not in ("evaluation", "gate")}
    b.save(update_fields=["metrics"])
    url = reverse("admin:segmentation_modelversion_compare")

    User.objects.create_user("visitor", password="pw")
    client.login(username="visitor", password="pw")
    refused = client.get(url)
    assert refused.status_code == 302 and "/login/" in refused["Location"]

    User.objects.create_superuser("boss", password="pw")
    client.login(username="boss", password="pw")
    listing = client.get(reverse("admin:segmentation_modelversion_changelist"))
    assert url in listing.content.decode()
    page = client.get(url, {"v": [a.pk, b.pk]})
    html = page.content.decode()
    assert page.status_code == 200
    assert a.name in html and b.name in html
    assert html.count("<svg") >= 2  # one reliability plot per structure
    assert "L1 vs volunteers" in html and "not evaluated yet" in html  # b has no evaluation
    assert html.count("data:image/png;base64,") >= 3 * 3  # 3 example galaxies: image + one mask per version
    assert client.get(url, {"v": ["x"]}).status_code == 400
    assert client.get(url, {"v": [a.pk, 10_000]}).status_code == 400

    # the list's action leads to the same page with the chosen versions
    action = client.post(reverse("admin:segmentation_modelversion_changelist"),
                         {"action": "compare", "_selected_action": [a.pk, b.pk]})
    assert action.status_code == 302 and action["Location"].startswith(url)
    assert f"v={a.pk}" in action["Location"] and f"v={b.pk}" in action["Location"]


def test_every_source_against_the_truth_side_by_side(survey, capsys, tmp_path):
    """Crowd fractions thresholded on val, a binary arc-finder mask, two model versions as separate rows, and a
    galaxy without an arc-finder mask: the numbers are recomputed here from the stored masks."""
    from segmentation.models import Galaxy, Mask
    from segmentation.selectors.galaxies import galaxy_ids_in_split

    finder = producer_get_or_create(kind="sparcfire", name="arcfinder", version="t", parameters={"a": 1})
    models = [producer_get_or_create(kind="model", name=f"unet-{v}", version=v) for v in ("a", "b")]
    split_of = {g.pk: s for s in ("val", "test") for g in Galaxy.objects.filter(pk__in=galaxy_ids_in_split(s))}
    test_ids = [pk for pk, s in split_of.items() if s == "test"]
    for g in Galaxy.objects.filter(pk__in=split_of):
        im = g.images.get()
        _, arm, _, _, _ = galaxy_maps(int(g.name[1:]))
        left = arm.copy()
        left[:, SIZE // 2:] = False
        if g.pk != test_ids[0]:  # one test galaxy has no arc-finder mask
            mask_store(galaxy=g, image=im, structure="spiral", producer=finder, state="marked",
                       numerators=left.astype(np.int64), denominator=1)
        for k, p in enumerate(models):  # "b" is the truth itself, "a" its left half as fractions 0.6
            plane = arm if k else left
            mask_store(galaxy=g, image=im, structure="spiral", producer=p, state="marked",
                       numerators=(plane * 153).astype(np.int64), denominator=255)

    report = sources_vs_truth(structure="spiral", split="test", n_boot=300)

    def truth_and(source_kind, producer=None):
        out = {}
        for m in Mask.objects.filter(structure="spiral", is_current=True, galaxy_id__in=split_of,
                                     producer__kind=source_kind, **({"producer": producer} if producer else {})):
            out[m.galaxy_id] = m.fractions()
        return out

    truth, crowd = truth_and("truth"), truth_and("volunteers")
    val = [pk for pk, s in split_of.items() if s == "val"]
    thresholds = [round(t, 2) for t in np.arange(0.05, 0.951, 0.05)]

    def mean_iou(maps, ids, t):
        v = [np.count_nonzero((maps[i] >= t) & (truth[i] > 0)) / np.count_nonzero((maps[i] >= t) | (truth[i] > 0))
             for i in ids if i in maps]
        return float(np.mean(v)), len(v)

    t_crowd = max(thresholds, key=lambda t: mean_iou(crowd, val, t)[0])
    assert report["sources"]["volunteers"]["threshold"] == t_crowd
    assert report["sources"]["volunteers"]["mean"] == pytest.approx(mean_iou(crowd, test_ids, t_crowd)[0], abs=1e-6)
    arcs = report["sources"]["sparcfire"]
    finder_maps = truth_and("sparcfire")
    assert arcs["threshold_from"] == "binary mask" and arcs["n_missing"] == 1 and arcs["n"] == len(test_ids) - 1
    assert arcs["mean"] == pytest.approx(mean_iou(finder_maps, test_ids, 0.5)[0], abs=1e-6)
    assert report["sources"]["model: unet-b b"]["mean"] == pytest.approx(1.0)
    a = report["sources"]["model: unet-a a"]
    assert a["mean"] == pytest.approx(arcs["mean"], abs=0.05) and a["threshold"] <= 0.6
    d = {(x["a"], x["b"]): x for x in report["differences"]}
    pair = d[("model: unet-b b", "sparcfire")]
    assert pair["n"] == len(test_ids) - 1 and pair["excludes_zero"] and pair["difference"] > 0.3

    out = tmp_path / "spiral.json"
    call_command("compare_masks", "--split", "test", "--n-boot", "200", "--out", str(out))
    text = capsys.readouterr().out
    assert "spiral mask IoU against the truth on the survey_cutout images, test split" in text and "binary" in text
    assert "model: unet-b b - sparcfire" in text and "interval excludes 0" in text
    assert out.exists() and "differences" in out.read_text()
