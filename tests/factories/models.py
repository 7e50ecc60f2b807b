"""Model versions and training pictures for tests."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from django.core.files.base import ContentFile

from evalcore.unet.model import UNetConfig, build_model, model_bytes
from segmentation.models import ModelVersion
from segmentation.services.masks import producer_get_or_create


def make_version(name: str, bias: float, training_images, metrics: dict | None = None) -> ModelVersion:
    """A version whose network answers sigmoid(bias) everywhere, trained (per its manifest) on ``training_images``."""
    config = UNetConfig(image_size=32)
    model = build_model(config)
    head = model.net.segmentation_head[0]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(bias)
    blob = model_bytes(model, config)
    digest = hashlib.sha256(blob).hexdigest()
    producer = producer_get_or_create(kind="model", name=name, version=digest[:12])
    manifest = {"galaxies": [{"galaxy_id": im.galaxy_id, "name": im.galaxy.name, "split": "train",
                              "image_id": im.pk, "masks": {}} for im in training_images]}
    version = ModelVersion(name=name, producer=producer, config=config.to_dict(), weights_sha256=digest,
                           metrics=metrics or {})
    version.weights.save(f"{name}.pt", ContentFile(blob), save=False)
    version.manifest.save(f"{name}.json", ContentFile(json.dumps(manifest).encode()), save=False)
    version.save()
    return version


def picture(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width]
    light = 200 * np.exp(-np.hypot(rows - height / 2, cols - width / 2) / 6) + rng.normal(20, 3, (height, width))
    return np.repeat(np.clip(light, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def disk_with_arm(size, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - size / 2
    r, th = np.hypot(x, y), np.arctan2(y, x)
    arm = (np.abs(np.sin(th - np.log(r + 1) * 2)) < 0.3) & (r < size / 2.2) & (r > 3)
    img = np.clip(np.exp(-r / 8) * 200 + arm * 80 + rng.normal(0, 5, r.shape), 0, 255).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2), arm
