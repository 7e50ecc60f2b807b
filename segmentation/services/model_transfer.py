"""Model versions moved between installations: one export file (weights, configuration, training manifest,
metrics, provenance) written and checked, and installed as a new ModelVersion.

``version_export`` writes one zip (weights as stored, manifest, configuration, metrics and provenance, with
sha256 of both files); ``version_import`` checks the hashes and creates the Producer and ModelVersion,
refusing a duplicate.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from evalsite.version import code_version
from segmentation.models import ModelVersion, Producer
from segmentation.services.masks import producer_get_or_create

# --- transfer between installations -------------------------------------------------------------------------
EXPORT_FORMAT = "evalsite-model-export"


EXPORT_VERSION = 1


class TransferError(ValueError):
    """A model file that cannot be imported (damaged, tampered, or already installed)."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_export(*, version: ModelVersion, out: str | Path) -> dict:
    """Write ``version`` as one zip: model.json (configuration, metrics, provenance, hashes), weights.pt
    (the stored model file, byte for byte) and manifest.json. Returns the model.json content."""
    with version.weights.open("rb") as fh:
        weights = fh.read()
    if _sha256(weights) != version.weights_sha256:
        raise TransferError(f"the stored weights of {version.name} do not match their recorded sha256 "
                            f"{version.weights_sha256[:12]}: storage is damaged, refusing to export them")
    manifest = b""
    if version.manifest:
        with version.manifest.open("rb") as fh:
            manifest = fh.read()
    run = version.training_run
    producer = version.producer
    header = {
        "format": EXPORT_FORMAT, "format_version": EXPORT_VERSION,
        "name": version.name, "config": version.config, "metrics": version.metrics,
        "code_version": version.code_version, "package_versions": version.package_versions,
        "created_at": version.created_at.isoformat(), "weights_sha256": version.weights_sha256,
        "manifest_sha256": _sha256(manifest) if manifest else None,
        "producer": {"name": producer.name, "version": producer.version, "parameters": producer.parameters,
                     "code_version": producer.code_version, "description": producer.description},
        "training_run": None if run is None else {
            "id": run.pk, "config": run.config, "history": run.history, "timings": run.timings,
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "requested_by": run.requested_by,
        },
        "exported_at": timezone.now().isoformat(timespec="seconds"), "exported_by_code_version": code_version(),
    }
    if "imported" in version.metrics:  # an imported version keeps the provenance of where it was trained
        header["training_run"] = version.metrics["imported"].get("training_run", header["training_run"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr("model.json", json.dumps(header, indent=1, sort_keys=True), zipfile.ZIP_DEFLATED)
        zf.writestr("weights.pt", weights, zipfile.ZIP_STORED)  # torch zip: compressing again gains nothing
        if manifest:
            zf.writestr("manifest.json", manifest, zipfile.ZIP_DEFLATED)
    tmp.replace(out)
    return header


def read_export(path: str | Path) -> tuple[dict, bytes, bytes]:
    """(model.json, weights bytes, manifest bytes) of an export file, after checking format and hashes."""
    from evalcore.unet.model import UNetConfig, read_bundle

    path = Path(path)
    if not path.is_file():
        raise TransferError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = {"model.json", "weights.pt"} - names
            if missing:
                raise TransferError(f"{path}: not a model export (missing {', '.join(sorted(missing))})")
            header = json.loads(zf.read("model.json"))
            weights = zf.read("weights.pt")
            manifest = zf.read("manifest.json") if "manifest.json" in names else b""
    except (zipfile.BadZipFile, zipfile.LargeZipFile, json.JSONDecodeError) as exc:
        raise TransferError(f"{path}: not a model export ({exc})") from exc
    except zipfile.error as exc:  # pragma: no cover - other zip damage
        raise TransferError(f"{path}: damaged zip ({exc})") from exc
    if header.get("format") != EXPORT_FORMAT:
        raise TransferError(f"{path}: not a model export (format {header.get('format')!r})")
    if header.get("format_version") != EXPORT_VERSION:
        raise TransferError(f"{path}: export format version {header.get('format_version')} is not supported "
                            f"(this code reads {EXPORT_VERSION})")
    digest = _sha256(weights)
    if digest != header.get("weights_sha256"):
        raise TransferError(f"{path}: weights hash mismatch: the file says {header.get('weights_sha256')}, "
                            f"the weights it holds hash to {digest}; the file was altered or damaged")
    if header.get("manifest_sha256") and _sha256(manifest) != header["manifest_sha256"]:
        raise TransferError(f"{path}: manifest hash mismatch: the file says {header['manifest_sha256']}, "
                            f"its manifest hashes to {_sha256(manifest)}")
    try:
        bundle = read_bundle(weights)
    except ValueError as exc:
        raise TransferError(f"{path}: weights.pt is not a usable model file ({exc})") from exc
    if UNetConfig.from_dict(bundle["config"]).to_dict() != UNetConfig.from_dict(header["config"]).to_dict():
        raise TransferError(f"{path}: the configuration in model.json differs from the one in the weights")
    return header, weights, manifest


def version_import(*, path: str | Path, name: str | None = None) -> ModelVersion:
    """Install an export file as a new ModelVersion with its Producer. Refuses altered files and a version
    already installed (same name, or same weights under another name). It becomes active only when no
    version is active yet (importing never silently changes the model that serves)."""
    header, weights, manifest = read_export(path)
    name = name or header["name"]
    same_name = ModelVersion.objects.filter(name=name).first()
    if same_name is not None:
        raise TransferError(f"a model version named {name!r} already exists here (weights sha256 "
                            f"{same_name.weights_sha256[:12]}); nothing imported")
    same_weights = ModelVersion.objects.filter(weights_sha256=header["weights_sha256"]).first()
    if same_weights is not None:
        raise TransferError(f"these weights (sha256 {header['weights_sha256'][:12]}) are already installed as "
                            f"model version {same_weights.name!r}; nothing imported")
    p = header["producer"]
    with transaction.atomic():
        producer = producer_get_or_create(
            kind=Producer.Kind.MODEL, name=p["name"] if name == header["name"] else name, version=p["version"],
            parameters=p["parameters"], code_version=p["code_version"], description=p["description"],
        )
        if ModelVersion.objects.filter(producer=producer).exists():
            raise TransferError(f"producer {producer} already belongs to another model version; nothing imported")
        metrics = {**header["metrics"], "imported": {
            "from_file": Path(path).name, "imported_at": timezone.now().isoformat(timespec="seconds"),
            "exported_at": header.get("exported_at"), "original_created_at": header.get("created_at"),
            "exported_by_code_version": header.get("exported_by_code_version"),
            "training_run": header.get("training_run"),
        }}
        version = ModelVersion(
            name=name, training_run=None, producer=producer, config=header["config"],
            weights_sha256=header["weights_sha256"], metrics=metrics, code_version=header.get("code_version", ""),
            package_versions=header.get("package_versions", {}),
            is_active=not ModelVersion.objects.filter(is_active=True).exists(),
        )
        version.weights.save(f"{name}.pt", ContentFile(weights), save=False)
        if manifest:
            version.manifest.save(f"{name}.json", ContentFile(manifest), save=False)
        version.save()
    return version


def file_sha256(field_file) -> str:
    """sha256 of a stored file (weights, manifest)."""
    h = hashlib.sha256()
    with field_file.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
