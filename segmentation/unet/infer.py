"""Inference: fraction maps for RGB images at each image's own size (no Django).

``Predictor`` holds one model on one device. ``predict`` preprocesses exactly as training did
(``data.preprocess``), runs batches, and maps the output back to each image's full frame
(``data.postprocess``). The optimised path uses channels_last memory layout, plus reduced-precision
autocast where it pays (CUDA; CPUs with native bf16); ``optimized=False`` is plain fp32 eager.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from segmentation.unet import device as dev
from segmentation.unet.data import postprocess, preprocess
from segmentation.unet.model import STRUCTURES, FractionUNet, UNetConfig, load_model


class Predictor:
    """Apply a trained model.

    ``weights``: a model file written by ``model.save_model`` / ``TrainResult.model_bytes`` (path, bytes,
    binary file object or loaded dict), or a FractionUNet together with its ``config``.
    ``device``: None = CUDA when present, else CPU. ``threads``: torch threads for this process (None =
    leave as is). ``optimized``: None = channels_last, plus reduced precision where it pays on this device;
    True = also force reduced precision (bf16 on CPU); False = plain fp32 eager, contiguous.
    """

    structures = STRUCTURES

    def __init__(self, weights: str | Path | bytes | BinaryIO | dict | FractionUNet, config: UNetConfig | None = None,
                 *, device: str | torch.device | None = None, threads: int | None = None,
                 optimized: bool | None = None, batch_size: int = 8):
        if isinstance(weights, FractionUNet):
            if config is None:
                raise ValueError("a model object needs its UNetConfig")
            model, self.metadata = weights, {}
        else:
            model, stored, self.metadata = load_model(weights)
            if config is not None and config.to_dict() != stored.to_dict():
                raise ValueError("the given config differs from the one stored with the weights")
            config = stored
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.config = config
        self.device = dev.pick_device(device)
        self.threads = dev.set_threads(threads)
        self.batch_size = int(batch_size)
        self.channels_last = optimized is not False
        self.reduced = bool(optimized) or (optimized is None and dev.reduced_precision_pays(self.device))
        fmt = dev.memory_format(self.device, self.channels_last)
        self.model = model.to(self.device).to(memory_format=fmt).eval()

    def describe(self) -> dict:
        """How this predictor runs (for provenance and logs)."""
        dtype = dev.autocast_dtype(self.device) if self.reduced else torch.float32
        return {"device": str(self.device), "threads": self.threads, "batch_size": self.batch_size,
                "channels_last": self.channels_last, "dtype": str(dtype).replace("torch.", ""),
                "image_size": self.config.image_size}

    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) preprocessed images -> (B, 2, S, S) float32 fractions in [0, 1] on the CPU."""
        fmt = dev.memory_format(self.device, self.channels_last)
        x = batch.to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        with dev.autocast(self.device, self.reduced):
            logits = self.model(x)
        return torch.sigmoid(logits.float()).cpu()

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """RGB images (H, W, 3) uint8, any sizes -> per image a (2, H, W) float32 array of fractions in
        [0, 1] (channel 0 spiral, 1 bar) on that image's pixel grid."""
        out: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            batch = torch.stack([preprocess(img, self.config) for img in chunk])
            fractions = self.forward(batch)
            out.extend(postprocess(f, np.asarray(img).shape) for f, img in zip(fractions, chunk))
        return out

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self.predict([image])[0]


def fraction_difference(a: Predictor, b: Predictor, images: Sequence[np.ndarray]) -> dict:
    """How far two predictors' fractions lie apart on the same images: p50/p99/max of |a - b| over all
    pixels of both channels (used to check the optimised path against fp32)."""
    diffs = [np.abs(x - y).ravel() for x, y in zip(a.predict(images), b.predict(images))]
    d = np.concatenate(diffs)
    return {"p50": float(np.percentile(d, 50)), "p99": float(np.percentile(d, 99)), "max": float(d.max()),
            "pixels": int(d.size)}
