"""Inference: fraction maps for RGB images at each image's own size (no Django).

``Predictor`` holds one model on one device. ``predict`` preprocesses exactly as training did
(``data.preprocess``), runs batches, and maps the output back to each image's full frame
(``data.postprocess``).

Execution modes (``mode``):
- "fp32": plain fp32 eager, contiguous memory - the reference;
- "reduced": channels_last + autocast (bf16 on CPU, bf16/fp16 on CUDA);
- "int8": CPU only, post-training static quantisation (torch.ao FX, x86 backend, per-channel weights),
  calibrated on the images stored in the model file (so every worker quantises identically), fed
  channels_last input;
- "auto" (default): CUDA -> "reduced"; CPU -> "int8" when the model file carries calibration images and
  the int8 outputs agree with fp32 on them (99th percentile of |fraction difference| <= INT8_TOLERANCE),
  else "reduced" on a CPU with native bf16, else channels_last fp32. int8 comes first because it was the
  fastest path on both CPUs measured (docs/unet.md): 2.7x fp32 on AVX2 without bf16, 3.6x on an EPYC with
  AVX512-BF16 and VNNI where bf16 autocast gave 1.8x. ``describe()`` says what ran and why.
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from evalcore.unet import device as dev
from evalcore.unet.data import postprocess_batch, preprocess, preprocess_batch
from evalcore.unet.model import STRUCTURES, FractionUNet, UNetConfig, load_model, read_bundle

MODES = ("auto", "fp32", "reduced", "int8")
INT8_TOLERANCE = 0.02  # p99 of |int8 - fp32| fractions on the calibration images


def quantize_int8(model: FractionUNet, calibration: torch.Tensor) -> torch.nn.Module:
    """An int8 copy of ``model.net`` (CPU), calibrated on (N, 3, S, S) float inputs in [0, 1]."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao announces its successor on every call
        prepared = prepare_fx(copy.deepcopy(model.net).cpu().eval(),
                              get_default_qconfig_mapping(torch.backends.quantized.engine),
                              example_inputs=(calibration[:1],))
        with torch.inference_mode():
            for start in range(0, len(calibration), 8):
                prepared(calibration[start:start + 8])
        return convert_fx(prepared)


class Predictor:
    """Apply a trained model.

    ``weights``: a model file written by ``model.save_model`` / ``TrainResult.model_bytes`` (path, bytes,
    binary file object or loaded dict), or a FractionUNet together with its ``config``.
    ``device``: None = CUDA when present, else CPU. ``threads``: torch threads for this process (None =
    leave as is). ``mode``: see the module docstring. ``calibration``: (N, 3, S, S) uint8 network inputs for
    int8, overriding the ones in the file.
    """

    structures = STRUCTURES

    def __init__(self, weights: str | Path | bytes | BinaryIO | dict | FractionUNet, config: UNetConfig | None = None,
                 *, device: str | torch.device | None = None, threads: int | None = None, mode: str = "auto",
                 batch_size: int = 8, calibration: torch.Tensor | None = None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if isinstance(weights, FractionUNet):
            if config is None:
                raise ValueError("a model object needs its UNetConfig")
            model, self.metadata, stored_calibration = weights, {}, None
        else:
            bundle = read_bundle(weights)
            model, stored, self.metadata = load_model(bundle)
            if config is not None and config.to_dict() != stored.to_dict():
                raise ValueError("the given config differs from the one stored with the weights")
            config, stored_calibration = stored, bundle.get("calibration")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.config = config
        self.device = dev.pick_device(device)
        self.threads = dev.set_threads(threads)
        self.batch_size = int(batch_size)
        self.model = model.to(self.device).eval()
        self.quantized = None
        self.int8_check: dict | None = None
        calibration = calibration if calibration is not None else stored_calibration
        self.mode, self.reason = self._choose_mode(mode, calibration)
        self.channels_last = self.mode in ("reduced", "channels_last")
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _choose_mode(self, mode: str, calibration: torch.Tensor | None) -> tuple[str, str]:
        if mode == "fp32":
            return "fp32", "requested"
        if mode == "reduced":
            return "reduced", "requested"
        if self.device.type != "cpu":
            if mode == "int8":
                raise ValueError("int8 inference runs on the CPU only")
            return "reduced", "CUDA"
        bf16 = dev.reduced_precision_pays(self.device)
        if calibration is None:
            if mode == "int8":
                raise ValueError("int8 needs calibration images (none in the model file, none given)")
            if bf16:
                return "reduced", "no calibration images for int8; CPU with native bf16"
            return "channels_last", "no native bf16 and no calibration images for int8"
        cal = calibration.float() / 255.0 if calibration.dtype == torch.uint8 else calibration.float()
        self.quantized = quantize_int8(self.model, cal)
        with torch.inference_mode():
            ref = torch.sigmoid(self.model(cal).float())
        low = self.forward(cal)
        d = (ref - low).abs().flatten()
        self.int8_check = {"p99": float(torch.quantile(d[:: max(1, d.numel() // 1_000_000)], 0.99)),
                           "max": float(d.max()), "images": int(len(cal))}
        if mode == "auto" and self.int8_check["p99"] > INT8_TOLERANCE:
            self.quantized = None
            failed = f"int8 failed its accuracy check (p99 {self.int8_check['p99']:.4f})"
            return ("reduced", f"{failed}; CPU with native bf16") if bf16 else ("channels_last", failed)
        return "int8", "int8 passed its accuracy check" if mode == "auto" else "requested"

    def describe(self) -> dict:
        """How this predictor runs (for provenance and logs)."""
        dtype = {"fp32": "float32", "channels_last": "float32", "int8": "int8",
                 "reduced": str(dev.autocast_dtype(self.device)).replace("torch.", "")}[self.mode]
        return {"device": str(self.device), "threads": self.threads, "batch_size": self.batch_size,
                "mode": self.mode, "reason": self.reason, "dtype": dtype,
                "channels_last": self.channels_last or self.mode == "int8",
                "image_size": self.config.image_size, "int8_check": self.int8_check}

    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) preprocessed images -> (B, 2, S, S) float32 fractions in [0, 1] on the CPU."""
        if self.quantized is not None:
            with warnings.catch_warnings():
                # quantized cat of skip connections with different scales: covered by the accuracy check
                warnings.filterwarnings("ignore", message="All inputs of this cat operator")
                # fbgemm's int8 convolutions work in NHWC: a channels_last input saves the conversions
                x = batch.cpu().float().contiguous(memory_format=torch.channels_last)
                return torch.sigmoid(self.quantized(x).float())
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = batch.to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        with dev.autocast(self.device, self.mode == "reduced"):
            logits = self.model(x)
        return torch.sigmoid(logits.float()).cpu()

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """RGB images (H, W, 3) uint8, any sizes -> per image a (2, H, W) float32 array of fractions in
        [0, 1] (channel 0 spiral, 1 bar) on that image's pixel grid."""
        out: list[np.ndarray] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            fractions = self.forward(preprocess_batch(chunk, self.config))
            out.extend(postprocess_batch(fractions, [np.shape(img) for img in chunk], self.config.field_of_view))
        return out

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        return self.predict([image])[0]


def calibration_images(samples: Sequence, config: UNetConfig, n: int = 16) -> torch.Tensor:
    """Up to ``n`` images (Samples, callables or RGB arrays) as (N, 3, S, S) uint8 network inputs, evenly
    spread over ``samples``, for storing in a model file."""
    from evalcore.unet.data import resolve

    if not len(samples):
        raise ValueError("no images to calibrate on")
    idx = np.unique(np.linspace(0, len(samples) - 1, min(n, len(samples))).round().astype(int))
    arrays = []
    for i in idx:
        s = samples[i]
        img = s if isinstance(s, np.ndarray) else resolve(s).image
        arrays.append((preprocess(img, config) * 255).round().to(torch.uint8))
    return torch.stack(arrays)


def fraction_difference(a: Predictor, b: Predictor, images: Sequence[np.ndarray]) -> dict:
    """How far two predictors' fractions lie apart on the same images: p50/p99/max of |a - b| over all
    pixels of both channels (used to check a fast path against fp32)."""
    diffs = [np.abs(x - y).ravel() for x, y in zip(a.predict(images), b.predict(images))]
    d = np.concatenate(diffs)
    return {"p50": float(np.percentile(d, 50)), "p99": float(np.percentile(d, 99)), "max": float(d.max()),
            "pixels": int(d.size)}
