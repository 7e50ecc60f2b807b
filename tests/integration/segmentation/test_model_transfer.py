"""export_model / import_model: a version moves with its weights, manifest, metrics and provenance."""
import json
import zipfile

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from evalcore.unet.infer import Predictor
from segmentation.models import ModelVersion, Producer
from segmentation.selectors.model_versions import model_version_splits
from segmentation.services import training
from segmentation.services.galaxies import galaxy_upsert, image_store
from segmentation.services.masks import mask_store, producer_get_or_create
from segmentation.services.model_transfer import file_sha256, version_export
from tests.factories.models import disk_with_arm


@pytest.fixture
def version(db):
    crowd = producer_get_or_create(kind="volunteers", name="GZ3D", version="test")
    for i in range(12):
        g, _ = galaxy_upsert(name=f"m{i}", defaults={"ra": 50.0 + 0.5 * i, "dec": 1.0 + 0.3 * i})
        rgb, arm = disk_with_arm(36, i)
        im, _ = image_store(galaxy=g, kind="survey_cutout", rgb=rgb)
        mask_store(galaxy=g, image=im, structure="spiral", producer=crowd, state="marked",
                   numerators=arm.astype(np.int64) * 7, denominator=9)
        mask_store(galaxy=g, image=im, structure="bar", producer=crowd, state="not_asked")
    n_train = sum(1 for i in training.labelled_galaxies(selection={}) if i.split == "train")
    # a last batch of one image cannot pass BatchNorm in training mode: avoid it
    batch = next(b for b in (4, 5, 3, 6) if n_train % b != 1)
    config = {"encoder": "resnet18", "image_size": 32, "epochs": 1, "batch_size": batch}
    run = training.training_start(config=config, selection={})
    training.run_train(run_id=run.pk, threads=1)
    v = ModelVersion.objects.get(training_run=run)
    v.metrics = {**v.metrics, "evaluation": {"split": "test", "n_test": 3}}
    v.save(update_fields=["metrics"])
    return v


@pytest.fixture
def untrained(db):
    """A version holding an untrained tiny model (no training needed to test the file checks)."""
    import hashlib

    from django.core.files.base import ContentFile

    from evalcore.unet.model import UNetConfig, build_model, model_bytes

    config = UNetConfig(image_size=32)
    blob = model_bytes(build_model(config), config)
    digest = hashlib.sha256(blob).hexdigest()
    producer = producer_get_or_create(kind="model", name="untrained", version=digest[:12])
    v = ModelVersion(name="untrained", producer=producer, config=config.to_dict(), weights_sha256=digest,
                     metrics={"note": "untrained"})
    v.weights.save("untrained.pt", ContentFile(blob), save=False)
    v.manifest.save("untrained.json", ContentFile(b'{"galaxies": []}'), save=False)
    v.save()
    return v


def predictions(v: ModelVersion, images):
    with v.weights.open("rb") as fh:
        return Predictor(fh.read(), mode="fp32").predict(images)


@pytest.mark.slow
def test_round_trip_keeps_weights_manifest_metrics_and_predictions(version, tmp_path):
    out = tmp_path / "exported.zip"
    call_command("export_model", version.name, "--out", str(out))
    name, sha, config, metrics = version.name, version.weights_sha256, version.config, version.metrics
    manifest_sha = file_sha256(version.manifest)
    producer = version.producer
    run_history = version.training_run.history
    images = [np.random.default_rng(1).integers(0, 255, (30, 44, 3), dtype=np.uint8)]
    before = predictions(version, images)

    with zipfile.ZipFile(out) as zf:
        header = json.loads(zf.read("model.json"))
    assert header["weights_sha256"] == sha and header["training_run"]["history"] == run_history

    # a second installation stands in as: this one without the version (and without its producer)
    version.delete()
    producer.delete()
    assert not ModelVersion.objects.filter(name=name).exists()

    call_command("import_model", str(out))
    imported = ModelVersion.objects.get(name=name)
    assert imported.weights_sha256 == sha == file_sha256(imported.weights)
    assert file_sha256(imported.manifest) == manifest_sha
    assert imported.config == config and imported.training_run is None
    # active only when it passed the quality gate where it was evaluated (and none is active here)
    assert imported.is_active == bool(metrics.get("gate", {}).get("passed"))
    assert imported.metrics["evaluation"] == metrics["evaluation"] and imported.metrics["history"] == metrics["history"]
    assert imported.metrics["imported"]["training_run"]["history"] == run_history
    assert imported.producer.kind == Producer.Kind.MODEL and imported.producer.name == name
    after = predictions(imported, images)
    assert np.array_equal(before[0], after[0])
    # the manifest still names the split each galaxy had
    assert model_version_splits(imported) and set(model_version_splits(imported).values()) <= {
        "train", "val", "test"}

    # export of an imported version carries the original training run, not "none"
    again = tmp_path / "again.zip"
    header2 = version_export(version=imported, out=again)
    assert header2["training_run"]["history"] == run_history


def test_import_refuses_duplicates_and_altered_files(untrained, tmp_path):
    version = untrained
    out = tmp_path / "v.zip"
    version_export(version=version, out=out)

    with pytest.raises(CommandError, match=f"a model version named '{version.name}' already exists"):
        call_command("import_model", str(out))
    with pytest.raises(CommandError, match="already installed as model version"):
        call_command("import_model", str(out), "--name", "copy")
    assert ModelVersion.objects.count() == 1

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "weights.pt":
                data = data[:-10] + bytes(10)
            dst.writestr(item, data)
    with pytest.raises(CommandError, match="weights hash mismatch"):
        call_command("import_model", str(tampered), "--name", "tampered")

    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello")
    with pytest.raises(CommandError, match="not a model export"):
        call_command("import_model", str(not_zip))
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_model", str(tmp_path / "missing.zip"))
    with pytest.raises(CommandError, match="no model version 'nope'"):
        call_command("export_model", "nope", "--out", str(tmp_path / "x.zip"))

    # weights that do not match the configuration written beside them
    lying = tmp_path / "lying.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(lying, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "model.json":
                header = json.loads(data)
                header["config"]["image_size"] = 64
                data = json.dumps(header).encode()
            dst.writestr(item, data)
    with pytest.raises(CommandError, match="configuration in model.json differs"):
        call_command("import_model", str(lying), "--name", "lying")
    assert ModelVersion.objects.count() == 1
    assert Producer.objects.filter(kind="model").count() == 1  # nothing half-imported


def test_export_refuses_stored_weights_that_no_longer_match_their_hash(untrained, tmp_path):
    untrained.weights_sha256 = "f" * 64
    untrained.save(update_fields=["weights_sha256"])
    with pytest.raises(CommandError, match="do not match their recorded sha256"):
        call_command("export_model", "untrained", "--out", str(tmp_path / "x.zip"))
    assert not (tmp_path / "x.zip").exists()
