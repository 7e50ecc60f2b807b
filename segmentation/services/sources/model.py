"""A trained U-Net (a ModelVersion) as a generation source.

Preprocessing is the model's own (``evalcore.unet.data.preprocess``, the same function training
used), and masks come back on the full frame of the image they are stored on. Fractions are stored as
k/255 (``maskcodec``). A map whose largest fraction stays below the version's threshold for that structure
(:func:`marking_thresholds`) is stored as EMPTY ("asked, nothing marked") with its fractions kept: the
model found no such structure, and what it did see is not lost.
"""
from __future__ import annotations

import os

import numpy as np

from evalcore.formats import maskcodec
from segmentation.models import ModelVersion, Producer
from segmentation.selectors.images import image_rgb
from segmentation.services.sources.registry import STRUCTURES, MaskOutput

_PREDICTORS: dict[str, object] = {}
# Without an evaluation of the version: a structure is marked where the model reaches the volunteers'
# consensus level (half of them), the level the quality report reads the volunteers' maps at.
DEFAULT_MARKING_THRESHOLD = 0.5


def marking_thresholds(version: ModelVersion) -> dict[str, tuple[float, str]]:
    """structure -> (fraction at or above which the version's map counts as marked, where it comes from):
    the threshold its evaluation chose on the validation split against the volunteers' consensus, else
    DEFAULT_MARKING_THRESHOLD."""
    out = {}
    evaluation = (version.metrics or {}).get("evaluation") or {}
    for structure in STRUCTURES:
        chosen = (((evaluation.get("structures") or {}).get(structure) or {})
                  .get("iou_vs_volunteer_consensus") or {}).get("model_threshold_from_val")
        if isinstance(chosen, (int, float)) and 0 < chosen <= 1:
            out[structure] = (float(chosen), "chosen on the validation split against the volunteers' consensus")
        else:
            out[structure] = (DEFAULT_MARKING_THRESHOLD, "the volunteers' consensus level (no evaluation yet)")
    return out


class Source:
    def __init__(self, version: ModelVersion, predictor):
        self.version = version
        self.predictor = predictor
        self.batch_size = predictor.batch_size
        self.thresholds = marking_thresholds(version)

    @staticmethod
    def producer(*, model_version: ModelVersion | None, parameters: dict) -> Producer:
        if model_version is None:
            raise ValueError("the model source needs a model version")
        return model_version.producer

    @classmethod
    def loaded(cls, run) -> Source:
        """One Predictor per model version per worker process: building it (and quantising, on CPUs where
        int8 is the fast path) takes seconds, so every later chunk on this worker reuses it."""
        from evalcore.unet.infer import Predictor

        version = run.model_version
        predictor = _PREDICTORS.get(version.weights_sha256)
        if predictor is None:
            with version.weights.open("rb") as fh:
                weights = fh.read()
            threads = int(os.environ.get("EVALSITE_TORCH_THREADS", "0")) or None
            predictor = Predictor(weights, threads=threads, batch_size=8)
            _PREDICTORS.clear()  # a worker serves one version at a time; keep memory flat
            _PREDICTORS[version.weights_sha256] = predictor
        return cls(version, predictor)

    def generate(self, images) -> list:
        pixels, out = [], [None] * len(images)
        for i, image in enumerate(images):
            try:
                pixels.append((i, image_rgb(image)))
            except (OSError, ValueError) as exc:
                out[i] = exc
        if pixels:
            predictions = self.predictor.predict([p for _, p in pixels])
            details = {"model_version": self.version.name, "runtime": self.predictor.describe()}
            for (i, _), fractions in zip(pixels, predictions):
                masks = {}
                for c, structure in enumerate(STRUCTURES):
                    numerators = np.rint(np.clip(fractions[c], 0, 1) * maskcodec.MODEL_DENOMINATOR).astype(np.int64)
                    threshold, how = self.thresholds[structure]
                    peak = float(numerators.max()) / maskcodec.MODEL_DENOMINATOR
                    state = "marked" if numerators.any() and peak >= threshold else "empty"
                    masks[structure] = MaskOutput(state, numerators, maskcodec.MODEL_DENOMINATOR, {
                        **details, "marked_threshold": threshold, "threshold_from": how, "peak_fraction": peak})
                out[i] = masks
        return out
